/**
 * The one cache type (src/cache/ttl-cache.ts): per-entry lifetimes, a bound that pushes out the
 * entry inserted longest ago, removal by name or all at once, and the counters /metrics reads.
 * Times are passed in, so nothing here waits.
 */
import { describe, expect, it } from "vitest";
import { CacheRegistry, TtlCache } from "../../src/cache/ttl-cache.js";

describe("TtlCache", () => {
  it("answers while an entry is fresh, then misses and drops it", () => {
    const cache = new TtlCache<string>("t", 10);
    cache.set("a", "A", 1_000, 0);
    expect(cache.get("a", 999)).toBe("A");
    expect(cache.get("a", 1_000)).toBeUndefined();
    expect(cache.size).toBe(0);
    expect([cache.hits, cache.misses, cache.removed.expired]).toEqual([1, 1, 1]);
    cache.set("b", "B", 0, 0);
    expect(cache.size).toBe(0);
  });

  it("when full, pushes out the entry inserted longest ago; a hit does not reorder", () => {
    const removed: string[] = [];
    const cache = new TtlCache<number>("t", 2, { onRemove: (key) => removed.push(key) });
    cache.set("a", 1, 60_000, 0);
    cache.set("b", 2, 60_000, 0);
    expect(cache.get("a", 1)).toBe(1);
    cache.set("c", 3, 60_000, 2);
    expect(removed).toEqual(["a"]);
    expect([cache.get("b", 3), cache.get("c", 3)]).toEqual([2, 3]);
    expect(cache.removed.size).toBe(1);
    // Replacing an entry is no eviction, but its old value is handed to onRemove.
    cache.set("b", 20, 60_000, 4);
    expect(removed).toEqual(["a", "b"]);
    expect(cache.size).toBe(2);
    expect(cache.removed.size).toBe(1);
  });

  it("removes by name or all at once, counted apart, and registers for /metrics", () => {
    const registry = new CacheRegistry();
    const removed: string[] = [];
    const cache = new TtlCache<number>("verdicts", 10, { registry, onRemove: (key) => removed.push(key) });
    for (const key of ["a", "b", "c"]) cache.set(key, 1, 60_000);
    expect(cache.delete("a")).toBe(true);
    expect(cache.delete("a")).toBe(false);
    cache.clear();
    expect(removed.sort()).toEqual(["a", "b", "c"]);
    expect(cache.removed).toEqual({ expired: 0, size: 0, invalidated: 1, cleared: 2 });
    expect(registry.all().map((c) => c.name)).toEqual(["verdicts"]);
  });

  it("indexBy: an entry answers only its own whole key; keys sharing a part take turns", () => {
    const removed: string[] = [];
    const cache = new TtlCache<number>("t", 2, {
      indexBy: (key) => key.slice(-2),
      onRemove: (key) => removed.push(key),
    });
    cache.set("one-xy", 1, 60_000, 0);
    expect(cache.get("one-xy", 1)).toBe(1);
    // Same part, another key: a miss that leaves the stored entry alone.
    expect(cache.get("two-xy", 1)).toBeUndefined();
    expect(cache.delete("two-xy")).toBe(false);
    expect(cache.get("one-xy", 2)).toBe(1);
    expect([cache.hits, cache.misses, cache.size]).toEqual([2, 1, 1]);
    // An expired entry is not dropped by another key's lookup, only by its own.
    cache.set("old-zz", 3, 10, 0);
    expect(cache.get("new-zz", 20)).toBeUndefined();
    expect(cache.removed.expired).toBe(0);
    expect(cache.get("old-zz", 20)).toBeUndefined();
    expect(cache.removed.expired).toBe(1);
    // The later of two keys sharing a part replaces the earlier; onRemove gets whole keys.
    cache.set("two-xy", 2, 60_000, 3);
    expect([cache.get("one-xy", 4), cache.get("two-xy", 4)]).toEqual([undefined, 2]);
    cache.set("a-bb", 4, 60_000, 5);
    cache.set("c-dd", 5, 60_000, 6);
    cache.clear();
    expect(removed).toEqual(["old-zz", "one-xy", "two-xy", "a-bb", "c-dd"]);
  });
});
