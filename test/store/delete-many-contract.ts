/**
 * Store.deleteMany and Store.putAndPublish, run by contract.ts on every engine: deleting many
 * keys of one namespace in one step (what ending an owner's access does, oauth/revoker.ts), and
 * writing an entry together with the change that tells other instances about it (a revocation
 * mark, tokens/revocations.ts).
 */
import { expect, it } from "vitest";
import type { Store } from "../../src/store/store.js";

export interface DeleteManyContext {
  store(): Store;
  open(): Promise<Store>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

export function deleteManyContract(ctx: DeleteManyContext): void {
  it("deleteMany: deletes the live keys named, counts them, and leaves everything else", async () => {
    const store = ctx.store();
    await store.put("dm", "a", 1);
    await store.put("dm", "b", { n: 2 }, 60);
    await store.put("dm", "keep", 3);
    await store.put("other", "a", "another namespace");
    // Absent keys are ignored; a key named twice is deleted (and counted) once.
    expect(await store.deleteMany("dm", ["a", "b", "never-there", "a"])).toBe(2);
    expect(await store.getMany("dm", ["a", "b", "keep"])).toEqual([undefined, undefined, 3]);
    expect(await store.get("other", "a")).toBe("another namespace");
    expect(await store.deleteMany("dm", [])).toBe(0);
    expect(await store.deleteMany("dm", ["a", "b"])).toBe(0);
  });

  it("deleteMany: an expired key is not counted as deleted", async () => {
    const store = ctx.store();
    await store.put("dmx", "short", 1, 1);
    await store.put("dmx", "live", 2, 60);
    await sleep(1_100);
    expect(await store.deleteMany("dmx", ["short", "live"])).toBe(1);
    expect(await store.get("dmx", "live")).toBeUndefined();
  });

  it("deleteMany: thousands of keys, spread over every slot of a cluster, and seen gone by another instance", async () => {
    const store = ctx.store();
    const other = await ctx.open();
    // Keys like grant ids: random, so on Redis Cluster they fall in many slots and on several masters.
    const keys = Array.from({ length: 1_500 }, (_, i) => `g${i}-${Math.random().toString(36).slice(2)}`);
    for (let i = 0; i < keys.length; i += 100) {
      await Promise.all(keys.slice(i, i + 100).map((key) => store.put("dmbulk", key, { i: key }, 600)));
    }
    await store.put("dmbulk", "survivor", 1);
    expect(await store.deleteMany("dmbulk", keys)).toBe(keys.length);
    const left = await other.getMany("dmbulk", [...keys, "survivor"]);
    expect(left.filter((v) => v !== undefined)).toEqual([1]);
  });

  it("deleteMany: checks the namespace as every other call does", async () => {
    await expect(ctx.store().deleteMany("bad:ns", ["k"])).rejects.toThrow();
  });

  it("putAndPublish: the entry is written and every listening instance hears its key", async () => {
    const store = ctx.store();
    const other = await ctx.open();
    const heard: string[] = [];
    const stop = await other.changes.subscribe("marks", {
      change: (body) => heard.push(body),
      resync: () => {},
    });
    try {
      await store.putAndPublish("marked", "user:ada", { at: 1 }, 60, "marks");
      expect(await other.get("marked", "user:ada")).toEqual({ at: 1 });
      await until(() => heard.length === 1);
      expect(heard).toEqual(["user:ada"]);
    } finally {
      stop();
    }
  });
}
