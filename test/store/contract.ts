/**
 * The Store contract: one suite, run against every engine (sqlite.test.ts, redis.test.ts).
 *
 * A harness gives fresh, isolated backing data per test and can open several store instances
 * on it (two SqliteStores on one file, several Redis connections), which is what makes the
 * concurrency cases real rather than sequential calls on one object.
 */
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Json, Store } from "../../src/store/store.js";
import { deleteManyContract } from "./delete-many-contract.js";
import { indexContract } from "./index-contract.js";
import { rotationContract } from "./rotation-contract.js";

export interface StoreHarness {
  /** A new store instance on this harness's data (same file, same server and key prefix). */
  open(): Promise<Store>;
  /** Stops and restarts the backing service if there is one (Redis with persistence). */
  restart?(): Promise<void>;
  /** Removes the data; stores opened by the suite are already closed. */
  cleanup(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

/** Runs the contract; `makeHarness` returning undefined skips (e.g. no redis-server outside CI). */
export function runStoreContract(name: string, makeHarness: () => Promise<StoreHarness | undefined>): void {
  describe(`Store contract: ${name}`, () => {
    let harness: StoreHarness;
    let stores: Store[];
    let store: Store;
    const open = async () => {
      const s = await harness.open();
      stores.push(s);
      return s;
    };

    beforeEach(async (ctx) => {
      const h = await makeHarness();
      if (!h) {
        ctx.skip();
        return;
      }
      harness = h;
      stores = [];
      store = await open();
    });

    afterEach(async () => {
      if (!harness) return;
      for (const s of stores) await s.close();
      await harness.cleanup();
    });

    it("round-trips get, put (replace) and delete, per namespace", async () => {
      expect(await store.get("a", "k")).toBeUndefined();
      await store.put("a", "k", { n: 1 });
      await store.put("b", "k", "other namespace");
      expect(await store.get("a", "k")).toEqual({ n: 1 });
      await store.put("a", "k", { n: 2 });
      expect(await store.get("a", "k")).toEqual({ n: 2 });
      expect(await store.delete("a", "k")).toBe(true);
      expect(await store.delete("a", "k")).toBe(false);
      expect(await store.get("a", "k")).toBeUndefined();
      expect(await store.get("b", "k")).toBe("other namespace");
    });

    it("round-trips unicode, nested objects and every JSON scalar", async () => {
      const value = {
        name: 'Zoë 🦊 ñ 中文 \u0000 "quoted" \\ /',
        nested: { deep: { list: [1, -2.5, 1e21, true, false, null, "", { x: [[]] }] } },
        empty: {},
      };
      await store.put("u", "ключ 🔑", value);
      expect(await store.get("u", "ключ 🔑")).toEqual(value);
      for (const scalar of [0, -1, 3.25, "", "s", true, false, null] as Json[]) {
        await store.put("u", "scalar", scalar);
        expect(await store.get("u", "scalar")).toEqual(scalar);
      }
    });

    it("round-trips arbitrary JSON values under arbitrary keys (property)", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.string({ minLength: 1, unit: "grapheme" }),
          fc.jsonValue(),
          async (key, value) => {
            await store.put("prop", key, value as Json);
            expect(await store.get("prop", key)).toEqual(JSON.parse(JSON.stringify(value)));
          },
        ),
        { numRuns: 150 },
      );
    });

    it("hides and drops entries once their TTL has passed, on every read", async () => {
      await store.put("t", "short", "gone soon", 1);
      await store.put("t", "long", "stays", 60);
      await store.put("t", "zero", "no expiry", 0);
      await store.put("t", "take-me", "gone soon", 1);
      expect(await store.get("t", "short")).toBe("gone soon");
      await sleep(1_100);
      expect(await store.get("t", "short")).toBeUndefined();
      expect(await store.getMany("t", ["short", "long", "zero"])).toEqual([undefined, "stays", "no expiry"]);
      expect((await store.list("t")).map((e) => e.key).sort()).toEqual(["long", "zero"]);
      expect(await store.take("t", "take-me")).toBeUndefined();
      expect(await store.delete("t", "short")).toBe(false);
    });

    it("rejects a negative TTL and a namespace with a colon", async () => {
      await expect(store.put("t", "k", 1, -1)).rejects.toThrow(RangeError);
      await expect(store.put("a:b", "k", 1)).rejects.toThrow(/namespace/);
      await expect(store.list("")).rejects.toThrow(/namespace/);
      expect(await store.get("t", "k")).toBeUndefined();
    });

    it("putIfAbsent writes only when absent, deleted or expired", async () => {
      expect(await store.putIfAbsent("p", "k", "first")).toBe(true);
      expect(await store.putIfAbsent("p", "k", "second")).toBe(false);
      expect(await store.get("p", "k")).toBe("first");
      await store.delete("p", "k");
      expect(await store.putIfAbsent("p", "k", "third", 1)).toBe(true);
      expect(await store.putIfAbsent("p", "k", "fourth", 1)).toBe(false);
      await sleep(1_100);
      expect(await store.putIfAbsent("p", "k", "fifth", 60)).toBe(true);
      expect(await store.get("p", "k")).toBe("fifth");
      const [entry] = await store.list("p");
      expect(entry?.expiresAt).toBeGreaterThan(Date.now() + 50_000);
    });

    it("lists live entries by literal, case-sensitive key prefix with their expiry", async () => {
      const before = Date.now();
      await store.put("l", "user:1", 1);
      await store.put("l", "user:2", 2, 60);
      await store.put("l", "User:3", 3);
      await store.put("l", "users", 4);
      await store.put("l", "u*x", 5);
      await store.put("l", "u?x[1]", 6);
      await store.put("l", "user:gone", 7, 1);
      await store.put("lx", "user:9", 9);
      expect(await store.list("l", "user:")).toHaveLength(3);
      await sleep(1_100);
      const users = await store.list("l", "user:");
      expect(users.map((e) => e.key).sort()).toEqual(["user:1", "user:2"]);
      const two = users.find((e) => e.key === "user:2");
      expect(two?.value).toBe(2);
      expect(two?.expiresAt).toBeGreaterThanOrEqual(before + 58_000);
      expect(two?.expiresAt).toBeLessThanOrEqual(Date.now() + 60_000);
      expect(users.find((e) => e.key === "user:1")?.expiresAt).toBeUndefined();
      expect((await store.list("l", "u*")).map((e) => e.key)).toEqual(["u*x"]);
      expect((await store.list("l", "u?x[")).map((e) => e.key)).toEqual(["u?x[1]"]);
      expect(await store.list("l")).toHaveLength(6);
      expect(await store.list("empty")).toEqual([]);
    });

    it("getMany returns values in key order, undefined for missing", async () => {
      await store.put("m", "a", { v: "a" });
      await store.put("m", "c", [1, 2]);
      expect(await store.getMany("m", ["a", "b", "c", "a"])).toEqual([
        { v: "a" },
        undefined,
        [1, 2],
        { v: "a" },
      ]);
      expect(await store.getMany("m", [])).toEqual([]);
    });

    it("incr counts from 1, keeps the first expiry, and restarts after it", async () => {
      expect(await store.incr("c", "k", 1)).toBe(1);
      expect(await store.incr("c", "k", 1)).toBe(2);
      expect(await store.incr("c", "k", 1)).toBe(3);
      expect(await store.get("c", "k")).toBe(3);
      const [entry] = await store.list("c");
      expect(entry?.expiresAt).toBeLessThanOrEqual(Date.now() + 1_000);
      await sleep(1_100);
      expect(await store.get("c", "k")).toBeUndefined();
      expect(await store.incr("c", "k", 60)).toBe(1);
    });

    it("incr is atomic across store instances", async () => {
      const others = [store, await open(), await open()];
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) => (others[i % others.length] as Store).incr("c", "race", 60)),
      );
      expect(results.sort((x, y) => x - y)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    });

    it("incrMany counts each key like incr, each with its own expiry, in the order given", async () => {
      expect(await store.incrMany("c", [])).toEqual([]);
      expect(await store.incr("c", "m-b", 60)).toBe(1);
      const counters = [
        { key: "m-a", ttlSeconds: 1 },
        { key: "m-b", ttlSeconds: 60 },
      ];
      expect(await store.incrMany("c", counters)).toEqual([1, 2]);
      expect(await store.incrMany("c", counters)).toEqual([2, 3]);
      expect(await store.incr("c", "m-a", 1)).toBe(3);
      const expiry = new Map((await store.list("c", "m-")).map((e) => [e.key, e.expiresAt ?? 0]));
      expect(expiry.get("m-a")).toBeLessThanOrEqual(Date.now() + 1_000);
      expect(expiry.get("m-b")).toBeGreaterThan(Date.now() + 30_000);
      await sleep(1_100);
      expect(await store.incrMany("c", counters)).toEqual([1, 4]);
      // Atomic per key across instances, as incr is.
      const others = [store, await open(), await open()];
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          (others[i % others.length] as Store).incrMany("c", [
            { key: "m-race", ttlSeconds: 60 },
            { key: "m-race2", ttlSeconds: 60 },
          ]),
        ),
      );
      const sorted = (n: 0 | 1) => results.map((r) => r[n] as number).sort((x, y) => x - y);
      expect(sorted(0)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(sorted(1)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    });

    it("take returns the value once, then nothing", async () => {
      await store.put("k", "code", { sub: "u1" }, 60);
      expect(await store.take("k", "code")).toEqual({ sub: "u1" });
      expect(await store.take("k", "code")).toBeUndefined();
      expect(await store.get("k", "code")).toBeUndefined();
      expect(await store.take("k", "never")).toBeUndefined();
    });

    it("take: of 50 concurrent callers on several instances, exactly one gets each value", async () => {
      const instances = [store, await open(), await open(), await open()];
      for (let round = 0; round < 10; round++) {
        await store.put("k", `code${round}`, { round }, 60);
        const got = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            (instances[i % instances.length] as Store).take("k", `code${round}`),
          ),
        );
        expect(got.filter((v) => v !== undefined)).toEqual([{ round }]);
      }
    });

    it("putIfAbsent: of 50 concurrent writers on several instances, exactly one wins", async () => {
      const instances = [store, await open(), await open(), await open()];
      const wins = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          (instances[i % instances.length] as Store).putIfAbsent("p", "race", i, 60),
        ),
      );
      const winners = wins.flatMap((won, i) => (won ? [i] : []));
      expect(winners).toHaveLength(1);
      expect(await store.get("p", "race")).toBe(winners[0]);
    });

    it("keeps data and expiry across close and reopen", async () => {
      await store.put("d", "forever", { keep: "me ✓" });
      await store.put("d", "ttl", "still here", 3_600);
      await store.close();
      await harness.restart?.();
      const reopened = await open();
      expect(await reopened.get("d", "forever")).toEqual({ keep: "me ✓" });
      const [entry] = await reopened.list("d", "ttl");
      expect(entry?.value).toBe("still here");
      expect(entry?.expiresAt).toBeGreaterThan(Date.now() + 3_500_000);
    });

    it("answers ping while open and refuses work once closed", async () => {
      await store.ping();
      await store.close();
      await expect(store.get("x", "y")).rejects.toThrow();
      await store.close(); // idempotent
    });

    it("change feed: every instance on the data hears what any one publishes, in order, per topic", async () => {
      const other = await open();
      const heard: [string[], string[]] = [[], []];
      const resyncs: [number, number] = [0, 0];
      const stops = await Promise.all(
        [store, other].map((s, i) =>
          s.changes.subscribe("t", {
            change: (body) => heard[i as 0 | 1].push(body),
            resync: () => resyncs[i as 0 | 1]++,
          }),
        ),
      );
      const marks: string[] = [];
      await other.changes.subscribe("marker", { change: (body) => marks.push(body), resync: () => {} });
      // A third instance that never subscribes (the admin CLI) publishes too.
      const publisher = await open();
      for (const body of ["jti:1", "sid:2", 'user:"3"']) await publisher.changes.publish("t", body);
      await store.changes.publish("elsewhere", "nobody listens");
      await store.changes.publish("marker", "a");
      await waitUntil(() => heard[0].length === 3 && heard[1].length === 3 && marks.length === 1);
      expect(heard).toEqual([
        ["jti:1", "sid:2", 'user:"3"'],
        ["jti:1", "sid:2", 'user:"3"'],
      ]);
      expect(other.changes.stats()).toMatchObject({ received: 4, resyncs: 0, listening: true });
      // A stopped listener hears nothing more: `other` hears the marker after, never "late".
      stops[1]?.();
      await store.changes.publish("t", "late");
      await store.changes.publish("marker", "b");
      await waitUntil(() => heard[0].length === 4 && marks.length === 2);
      expect(heard[1]).toHaveLength(3);
      expect(resyncs).toEqual([0, 0]);
    });

    rotationContract({ store: () => store, open });
    indexContract({ store: () => store, open });
    deleteManyContract({ store: () => store, open });
  });
}
