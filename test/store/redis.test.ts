import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../../src/config/load.js";
import { openStore } from "../../src/store/open.js";
import { RedisStore, type RedisStoreOptions } from "../../src/store/redis.js";
import { ROTATE_REFRESH_LUA, rotateRefreshArgs } from "../../src/store/redis-rotation.js";
import {
  FAMILY_NS,
  familyKey,
  NEXT_NS,
  nextKey,
  ROTATED_NS,
  rotatedKey,
} from "../../src/store/refresh-rotation.js";
import type { Store } from "../../src/store/store.js";
import {
  redisAvailable,
  startRedis,
  startRedisCluster,
  startRedisSentinel,
  type TestRedis,
} from "../support/redis.js";
import { runStoreContract, type StoreHarness } from "./contract.js";

/** Outside CI a missing redis-server skips these tests; in CI, startRedis() throws instead. */
const skipRedis = !redisAvailable() && process.env.CI !== "true";
if (skipRedis) console.warn("redis-server not found: skipping Redis store tests");

let shared: Promise<TestRedis | undefined> | undefined;
let prefixes = 0;
afterAll(async () => {
  await (await shared)?.stop();
});

/** One persistent server for the contract; every test gets its own key prefix. */
runStoreContract(
  "redis (several connections, persistent server)",
  async (): Promise<StoreHarness | undefined> => {
    shared ??= startRedis({ persist: true });
    const redis = await shared;
    if (!redis) return undefined;
    const key_prefix = `t${++prefixes}:`;
    return {
      open: () => RedisStore.connect({ url: redis.url, key_prefix }),
      restart: () => redis.restart(),
      cleanup: async () => {},
    };
  },
);

let cluster: ReturnType<typeof startRedisCluster> | undefined;
runStoreContract("redis cluster (three masters)", async () => {
  cluster ??= startRedisCluster();
  const nodes = (await cluster)?.nodes;
  if (!nodes) return undefined;
  const key_prefix = `c${++prefixes}:`;
  return { open: () => RedisStore.connect({ cluster_nodes: nodes, key_prefix }), cleanup: async () => {} };
});
afterAll(async () => {
  await (await cluster)?.stop();
});

describe.skipIf(skipRedis)("RedisStore specifics", () => {
  let redis: TestRedis;
  let raw: Redis;
  const stores: Store[] = [];
  const connect = async (opts: RedisStoreOptions) => {
    const store = await RedisStore.connect(opts);
    stores.push(store);
    return store;
  };

  beforeAll(async () => {
    redis = (await startRedis({ password: "pa:ss word" })) as TestRedis;
    raw = new Redis(redis.url);
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    raw?.disconnect();
    await redis?.stop();
  });

  it("stores JSON text under {prefix}{ns}:{key} with a native TTL", async () => {
    const store = await connect({ url: redis.url, key_prefix: "layout:" });
    await store.put("client", "abc", { name: "Zoë" }, 30);
    await store.put("client", "forever", 1);
    await store.incr("rl", "1.2.3.4", 60);
    expect(await raw.get("layout:client:abc")).toBe('{"name":"Zoë"}');
    const pttl = await raw.pttl("layout:client:abc");
    expect(pttl).toBeGreaterThan(29_000);
    expect(pttl).toBeLessThanOrEqual(30_000);
    expect(await raw.pttl("layout:client:forever")).toBe(-1);
    expect(await raw.pttl("layout:rl:1.2.3.4")).toBeGreaterThan(59_000);
    expect(await raw.get("layout:rl:1.2.3.4")).toBe("1");
  });

  it("change feed: a subscription killed and back tells listeners to resync, once; then hears again", async () => {
    const store = await connect({ url: redis.url, key_prefix: "feed:" });
    const heard: string[] = [];
    let resyncs = 0;
    await store.changes.subscribe("t", { change: (body) => heard.push(body), resync: () => resyncs++ });
    expect(store.changes.stats()).toMatchObject({ listening: true, resyncs: 0 });
    // The store's own connection is not a subscriber: only the feed's is cut.
    await raw.client("KILL", "TYPE", "pubsub");
    await until(() => resyncs === 1 && store.changes.stats().listening);
    await store.changes.publish("t", "after");
    await until(() => heard.length === 1);
    expect(heard).toEqual(["after"]);
    expect(store.changes.stats()).toMatchObject({ listening: true, resyncs: 1, received: 1 });
    expect(resyncs).toBe(1);
  });

  it("keeps key prefixes apart", async () => {
    const a = await connect({ url: redis.url, key_prefix: "pa:" });
    const b = await connect({ url: redis.url, key_prefix: "pb:" });
    await a.put("n", "k", "a");
    expect(await b.get("n", "k")).toBeUndefined();
    expect(await b.list("n")).toEqual([]);
    expect(await a.list("n")).toEqual([{ key: "k", value: "a" }]);
  });

  it("uses the configured db index, from the option or the URL", async () => {
    const viaOption = await connect({ url: redis.url, db: 3, key_prefix: "db:" });
    const viaUrl = await connect({ url: `${redis.url}/4`, key_prefix: "db:" });
    await viaOption.put("n", "k", "three");
    await viaUrl.put("n", "k", "four");
    expect(await raw.get("db:n:k")).toBeNull();
    const db3 = new Redis(redis.url, { db: 3 });
    const db4 = new Redis(redis.url, { db: 4 });
    expect(await db3.get("db:n:k")).toBe('"three"');
    expect(await db4.get("db:n:k")).toBe('"four"');
    db3.disconnect();
    db4.disconnect();
    expect(viaOption.location).toMatch(/\/3$/);
  });

  it("authenticates with the password option and never shows it", async () => {
    const url = `redis://127.0.0.1:${redis.port}`;
    const store = await connect({ url, password: "pa:ss word" });
    expect(store.kind).toBe("redis");
    await store.ping();
    const fromUrl = await connect({ url: redis.url });
    expect(fromUrl.location).toBe(`redis://:***@127.0.0.1:${redis.port}`);
    expect(fromUrl.location).not.toContain("pa");
  });

  it("refuses a wrong or missing password with one clear line", async () => {
    const url = `redis://127.0.0.1:${redis.port}`;
    const wrong = RedisStore.connect({ url, password: "nope" });
    await expect(wrong).rejects.toThrow(/^cannot use Redis at redis:\/\/127\.0\.0\.1:\d+\/?: WRONGPASS/);
    await expect(RedisStore.connect({ url })).rejects.toThrow(/NOAUTH/);
    const err = await RedisStore.connect({ url, password: "nope" }).catch((e: Error) => e);
    expect((err as Error).message).not.toContain("\n");
    expect((err as Error).message).not.toContain("nope");
  });

  it("fails fast when nothing listens, instead of retrying forever", async () => {
    const started = Date.now();
    await expect(RedisStore.connect({ url: "redis://127.0.0.1:1" })).rejects.toThrow(
      "cannot use Redis at redis://127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1",
    );
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("rejects a URL that is not redis://, rediss:// or unix://", async () => {
    await expect(RedisStore.connect({ url: "http://127.0.0.1:6379" })).rejects.toThrow(
      /redis:\/\/, rediss:\/\/ or unix:\/\/, got http:/,
    );
  });

  it("reconnects on its own when the server restarts", async () => {
    const server = (await startRedis({ persist: true })) as TestRedis;
    const errors: Error[] = [];
    const store = await RedisStore.connect({ url: server.url, onError: (e) => errors.push(e) });
    try {
      await store.put("n", "k", "before restart");
      await server.restart();
      expect(await store.get("n", "k")).toBe("before restart");
      await store.put("n", "k2", "after restart");
      expect(await store.get("n", "k2")).toBe("after restart");
    } finally {
      await store.close();
      await server.stop();
    }
  });

  it("a rotation whose answer was lost keeps its predecessor answerable until the successor is used", async () => {
    const store = await connect({ url: redis.url, key_prefix: "lost:" });
    const sid = "lost-reply";
    await store.put(FAMILY_NS, familyKey(sid), { current: "h0", issued_at: 1 }, 600);
    const rotation = (presented: string, successor: string) => ({
      sid,
      presented,
      successor,
      sealedSuccessor: `sealed-${successor}`,
      issuedAt: 2,
      ttlSeconds: 600,
      graceSeconds: 0.2,
    });
    // The script runs, its reply never reaches the store object (Redis stopped in between).
    const key = (ns: string, k: string) => `lost:${ns}:${k}`;
    await raw.eval(
      ROTATE_REFRESH_LUA,
      4,
      key(FAMILY_NS, familyKey(sid)),
      key(NEXT_NS, nextKey(sid)),
      key(ROTATED_NS, rotatedKey(sid, "h0")),
      key(FAMILY_NS, familyKey(sid)),
      ...rotateRefreshArgs(rotation("h0", "h1"), Date.now(), undefined),
    );
    await new Promise((r) => setTimeout(r, 300));
    // Past the grace window, the client's retry with the only token it has gets the successor.
    expect(await store.rotateRefresh(rotation("h0", "x"))).toEqual({
      outcome: "replayed",
      sealed: "sealed-h1",
    });
    // A rotation answered normally is confirmed: past the window its predecessor is reuse.
    expect(await store.rotateRefresh(rotation("h1", "h2"))).toEqual({ outcome: "rotated" });
    // The confirmation follows the answer on the store's own connection; this one waits for it.
    await expect.poll(() => raw.pttl(key(NEXT_NS, nextKey(sid)))).toBeLessThanOrEqual(200);
    await new Promise((r) => setTimeout(r, 300));
    expect(await store.rotateRefresh(rotation("h1", "x"))).toEqual({ outcome: "reused" });
  });

  it("confirms rotations answered together in one command, each only for its own successor", async () => {
    const store = await connect({ url: redis.url, key_prefix: "batch:" });
    const key = (ns: string, k: string) => `batch:${ns}:${k}`;
    const rotation = (sid: string, presented: string, successor: string) => ({
      sid,
      presented,
      successor,
      sealedSuccessor: `sealed-${successor}`,
      issuedAt: 2,
      ttlSeconds: 600,
      graceSeconds: 30,
    });
    const sids = Array.from({ length: 6 }, (_, i) => `batch-${i}`);
    for (const sid of sids) await store.put(FAMILY_NS, familyKey(sid), { current: "h0", issued_at: 1 }, 600);
    const monitor = await raw.monitor();
    /** Per script sent that confirms anything: the successors it confirms. */
    const confirms: string[][] = [];
    /** The family of each rotation whose script carried confirmations. */
    const carriers: string[] = [];
    monitor.on("monitor", (_time: string, args: string[]) => {
      // (EVAL the first time a script runs on a server, EVALSHA afterwards.)
      if (!/^eval(sha)?$/i.test(args[0] ?? "")) return;
      const keys = args.slice(3, 3 + Number(args[2]));
      // A confirmation's keys are sealed successors; a rotation's first four are its own, and
      // any after them are the successors it confirms on the way.
      const rotation = keys[0]?.startsWith(`batch:${FAMILY_NS}:`);
      const confirmed = rotation ? keys.slice(4) : keys;
      if (confirmed.length && confirmed.every((k) => k.startsWith(`batch:${NEXT_NS}:`))) {
        confirms.push(confirmed);
        if (rotation) carriers.push(keys[0] as string);
      }
    });
    try {
      const rotated = await Promise.all(sids.map((sid) => store.rotateRefresh(rotation(sid, "h0", "h1"))));
      expect(rotated.every((r) => r.outcome === "rotated")).toBe(true);
      // The first grant's successor is used at once, before its predecessor's confirmation left.
      expect(await store.rotateRefresh(rotation("batch-0", "h1", "h2"))).toEqual({ outcome: "rotated" });
      for (const sid of sids) {
        await expect.poll(() => raw.pttl(key(NEXT_NS, nextKey(sid)))).toBeLessThanOrEqual(30_000);
      }
      // Six grants rotated together: each confirmed, in fewer commands than rotations (here the
      // next rotation carries them all, as it follows within the batch window).
      await expect.poll(() => new Set(confirms.flat()).size).toBe(sids.length);
      expect(confirms.length).toBeLessThan(sids.length);
      // They rode in that rotation's own script: no command of their own.
      expect(carriers).toEqual([`batch:${FAMILY_NS}:${familyKey("batch-0")}`]);
      // batch-0's successor record is h2's, confirmed for h1; the replay of h1 still works.
      expect(await store.rotateRefresh(rotation("batch-0", "h1", "x"))).toEqual({
        outcome: "replayed",
        sealed: "sealed-h2",
      });
      expect(await store.rotateRefresh(rotation("batch-0", "h0", "x"))).toEqual({ outcome: "reused" });
    } finally {
      monitor.disconnect();
    }
  });

  it("sends the reads of one turn as one MGET, and keeps them in order with the other commands", async () => {
    const store = await connect({ url: redis.url, key_prefix: "reads:" });
    await store.put("ns", "a", { v: "a0" });
    await store.put("ns", "b", { v: "b0" });
    const monitor = await raw.monitor();
    const seen: string[][] = [];
    monitor.on("monitor", (_time: string, args: string[]) => {
      if (args.some((a) => a.startsWith("reads:"))) seen.push(args);
    });
    try {
      // Three reads asked for together (one of a key that is not there): one command.
      expect(
        await Promise.all([store.get("ns", "a"), store.get("ns", "missing"), store.get("ns", "b")]),
      ).toEqual([{ v: "a0" }, undefined, { v: "b0" }]);
      // A read asked for before a write sees the value before it; one asked for after, the value after.
      const [before, , after] = await Promise.all([
        store.get("ns", "a"),
        store.put("ns", "a", { v: "a1" }),
        store.get("ns", "a"),
      ]);
      expect(before).toEqual({ v: "a0" });
      expect(after).toEqual({ v: "a1" });
      await raw.get("reads:marker");
      await expect.poll(() => seen.some((args) => args[1] === "reads:marker")).toBe(true);
      const names = seen.map((args) => args[0]?.toLowerCase());
      expect(seen[0]).toEqual(["mget", "reads:ns:a", "reads:ns:missing", "reads:ns:b"]);
      expect(names.slice(1)).toEqual(["get", "set", "get", "get"]);
    } finally {
      monitor.disconnect();
    }
  });

  it("opens from the config's store section", async () => {
    const config = validateConfig({
      store: {
        type: "redis",
        redis: { url: `redis://127.0.0.1:${redis.port}`, password: "pa:ss word", db: 5 },
      },
    });
    const store = await openStore(config);
    stores.push(store);
    expect(store.kind).toBe("redis");
    await store.put("n", "k", true);
    const db5 = new Redis(redis.url, { db: 5 });
    expect(await db5.get("mcpgw:n:k")).toBe("true");
    db5.disconnect();
  });
});

describe.skipIf(skipRedis)("RedisStore through Sentinel", () => {
  it("finds the master via Sentinel and works", async () => {
    const sentinel = await startRedisSentinel();
    if (!sentinel) throw new Error("redis-server vanished");
    const store = await RedisStore.connect({ sentinels: sentinel.sentinels, sentinel_name: sentinel.name });
    try {
      expect(store.location).toBe(`redis-sentinel://${sentinel.sentinels[0]}/mymaster`);
      await store.put("n", "k", { via: "sentinel" });
      expect(await store.take("n", "k")).toEqual({ via: "sentinel" });
      await store.put("n", "k2", 1);
      const raw = new Redis(sentinel.master.url);
      expect(await raw.get("mcpgw:n:k2")).toBe("1");
      raw.disconnect();
    } finally {
      await store.close();
      await sentinel.stop();
    }
  });

  it("refuses wait_replicas on Cluster, where WAIT cannot reach the node that holds a key", async () => {
    await expect(RedisStore.connect({ cluster_nodes: ["127.0.0.1:7000"], wait_replicas: 1 })).rejects.toThrow(
      "store.redis.wait_replicas is not supported with store.redis.cluster_nodes",
    );
  });

  it("needs sentinel_name with sentinels", async () => {
    await expect(RedisStore.connect({ sentinels: ["127.0.0.1:26379"] })).rejects.toThrow(/sentinel_name/);
  });
});

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
