/**
 * Ending a client's or a user's access (oauth/revoker.ts) on real stores: everything the owner
 * has is gone (grants, refresh families, consents, sessions, index members), nothing of anyone
 * else's; and on Redis it takes a few commands per owner index, not several per entry (counted
 * with MONITOR on a real redis-server: a structural figure, not a timing one).
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GrantStore } from "../../src/oauth/grant-store.js";
import { Interactions } from "../../src/oauth/interaction.js";
import { Revoker } from "../../src/oauth/revoker.js";
import { NO_AUDIT } from "../../src/ops/audit.js";
import { RedisStore } from "../../src/store/redis.js";
import { FAMILY_NS, familyKey } from "../../src/store/refresh-rotation.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { Store } from "../../src/store/store.js";
import { Revocations } from "../../src/tokens/revocations.js";
import { redisAvailable, startRedis, type TestRedis } from "../support/redis.js";

const REFRESH = 30 * 86_400;
const CLIENT_GRANTS = 100;

interface Owned {
  grants: GrantStore;
  interactions: Interactions;
  revoker: Revoker;
}

function parts(store: Store): Owned {
  const grants = new GrantStore(store, { code: 60, refresh: REFRESH });
  return {
    grants,
    interactions: new Interactions(store, { pending: 600, session: 3600, consent: REFRESH }),
    revoker: new Revoker(store, new Revocations(store, 0, REFRESH), grants, NO_AUDIT, {
      refresh: REFRESH,
      session: 3600,
    }),
  };
}

async function addGrant(grants: GrantStore, sub: string, clientId: string): Promise<string> {
  const sid = randomUUID();
  const now = Math.floor(Date.now() / 1000);
  await grants.saveGrant({
    sid,
    client_id: clientId,
    user: { sub, login: sub, provider: "local" },
    scope: [],
    resources: [],
    created_at: now,
    auth_time: now,
  });
  await grants.refresh.start(sid);
  return sid;
}

/** A client with 100 grants and 100 consents of 100 users; one grant of another client besides. */
async function seedClient(store: Store, { grants, interactions }: Owned, clientId: string) {
  await store.put("migrations", "owner_index_v1", { at: Date.now() });
  const sids: string[] = [];
  for (let i = 0; i < CLIENT_GRANTS; i++) {
    sids.push(await addGrant(grants, `u${i}`, clientId));
    await interactions.rememberConsent(`u${i}`, clientId, [], []);
  }
  const other = await addGrant(grants, "u0", "other-client");
  return { sids, other };
}

async function expectClientGone(store: Store, clientId: string, sids: string[], other: string) {
  expect(await store.indexMembers(`client:${clientId}`)).toEqual([]);
  expect((await store.getMany("grants", sids)).filter(Boolean)).toEqual([]);
  expect((await store.getMany(FAMILY_NS, sids.map(familyKey))).filter(Boolean)).toEqual([]);
  expect(await store.get("consents", `u7:${clientId}`)).toBeUndefined();
  // The users' indexes no longer list the ended grants; another client's grant is untouched.
  expect(await store.indexMembers("user:u7")).not.toContain(`grants:${sids[7]}`);
  expect(await store.get("grants", other)).toBeDefined();
  expect(await store.get(FAMILY_NS, familyKey(other))).toBeDefined();
  expect(await store.indexMembers("user:u0")).toContain(`grants:${other}`);
}

describe("ending an owner's access: SQLite", () => {
  let dir: string;
  let store: SqliteStore;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "mcpgw-revoker-"));
    store = new SqliteStore(join(dir, "gateway.db"));
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a client: its grants, families and consents, and nobody else's", async () => {
    const owned = parts(store);
    const { sids, other } = await seedClient(store, owned, "c-sqlite");
    await owned.revoker.revokeClient("c-sqlite");
    await expectClientGone(store, "c-sqlite", sids, other);
  });

  it("a user: grants, consents and sessions, counted as the audit line gives them", async () => {
    const owned = parts(store);
    const events: unknown[] = [];
    const revoker = new Revoker(
      store,
      new Revocations(store, 0, REFRESH),
      owned.grants,
      { emit: (e) => events.push(e) },
      { refresh: REFRESH, session: 3600 },
    );
    await addGrant(owned.grants, "ada", "c1");
    await addGrant(owned.grants, "ada", "c2");
    await owned.interactions.rememberConsent("ada", "c1", [], []);
    const session = await owned.interactions.createSession({ sub: "ada", login: "ada", provider: "local" });
    await revoker.revokeUser("ada", { login: "ada", reason: "removed" });
    expect(await store.indexMembers("user:ada")).toEqual([]);
    expect(await store.list("sessions")).toEqual([]);
    expect(session).toBeTruthy();
    expect(events).toEqual([
      expect.objectContaining({ type: "user.revoked", user: "ada", grants: 2, sessions: 1, consents: 1 }),
    ]);
  });
});

const skipRedis = !redisAvailable() && process.env.CI !== "true";

describe.skipIf(skipRedis)("ending an owner's access: Redis", () => {
  let redis: TestRedis;
  let store: RedisStore;
  beforeAll(async () => {
    redis = (await startRedis()) as TestRedis;
    store = await RedisStore.connect({ url: redis.url, key_prefix: "rv:" });
  });
  afterAll(async () => {
    await store?.close();
    await redis?.stop();
  });

  /** Every command any client sent Redis while `run` ran (MONITOR), up to a marker sent after it. */
  async function commandsDuring(run: () => Promise<unknown>): Promise<string[]> {
    const watcher = new Redis(redis.url);
    const monitor = await watcher.monitor();
    const seen: string[] = [];
    let marked = false;
    const marker = `end-of-run-${randomUUID()}`;
    monitor.on("monitor", (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === "echo" && args[1] === marker) marked = true;
      else if (!marked) seen.push(String(args[0]).toLowerCase());
    });
    try {
      await run();
      // MONITOR streams commands in the order the server ran them: once the marker is seen,
      // every command of the run has been.
      const pinger = new Redis(redis.url);
      await pinger.echo(marker);
      pinger.disconnect();
      const deadline = Date.now() + 10_000;
      while (!marked && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(marked).toBe(true);
      return seen;
    } finally {
      monitor.disconnect();
      watcher.disconnect();
    }
  }

  it("a client with 100 grants and 100 consents: about a hundred commands, and all of it gone", async () => {
    const owned = parts(store);
    const { sids, other } = await seedClient(store, owned, "c-redis");
    const commands = await commandsDuring(() => owned.revoker.revokeClient("c-redis"));
    await expectClientGone(store, "c-redis", sids, other);
    const count = (name: string) => commands.filter((c) => c === name).length;
    // One ZREM per user whose grant ended (100) and one for the client's index; the deletions
    // are a handful of multi-key DELs (families, successors, grants, consents), not one per key.
    expect(count("zrem")).toBe(CLIENT_GRANTS + 1);
    expect(count("del")).toBeLessThanOrEqual(4);
    // Was about 600 (five commands per grant, one per consent).
    expect(commands.length).toBeLessThan(CLIENT_GRANTS + 15);
  });
});
