/**
 * How fast a revocation made on one instance is enforced by another, over one real store (a
 * real redis-server, or one SQLite file): RFC 7009 /revoke of an access token and of a refresh
 * token (its grant), `mcp-gateway admin users remove` run as its own process, and RFC 7592
 * DELETE /register/{id}, each refused by the other instance's /verify within 1 s, well inside
 * the revocation cache bound (5 s by default). A stream of revocations leaves other tokens'
 * cached verdicts alone (seen on /metrics). A key rotation on one instance is known to the
 * other at once. On Redis: a lost subscription that comes back drops every cached verdict
 * (a change published meanwhile is never heard), and so does a restarted Redis.
 */
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Redis } from "ioredis";
import { decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalUsers } from "../../src/idp/local.js";
import { addLocalUser, obtainTokens, refresh, SERVICES, STORES, sleep } from "../oauth/helpers.js";
import { REDIS_TEST_SECRET, type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { accessTokenFor } from "../support/login.js";
import { metricSample } from "../support/metrics.js";
import { foreignKey, mintAccessToken } from "../support/mint.js";
import { formPost, type RegisteredClient, registerClient } from "../support/oauth-client.js";
import { startRedis, type TestRedis } from "../support/redis.js";
import { msUntilRefused, REACH_MS, verify } from "../support/revocation-reach.js";

const BIN = resolve("bin/mcp-gateway.js");
const BUILT = existsSync(resolve("dist/cli/main.js"));
type Pair = [RunningGateway, RunningGateway];

const metric = (gw: RunningGateway, name: string, labels: Record<string, string> = {}) =>
  metricSample(gw.url, name, labels);

const revocationCache = (gw: RunningGateway) => ({
  hits: () => metric(gw, "mcpgw_cache_hits_total", { cache: "revocation" }),
  misses: () => metric(gw, "mcpgw_cache_misses_total", { cache: "revocation" }),
});

interface Holder {
  client: RegisteredClient;
  accessToken: string;
  refreshToken: string;
}

async function holder(gw: RunningGateway): Promise<Holder> {
  const client = await registerClient(gw.url);
  // The service's resource is named by the issuer's URL (the second of a pair listens elsewhere).
  const tokens = await obtainTokens(gw, client, { resource: `${gw.config.public_url}/notes/mcp` });
  return { client, accessToken: tokens.access_token, refreshToken: tokens.refresh_token };
}

function revoke(gw: RunningGateway, h: Holder, which: "access_token" | "refresh_token") {
  const token = which === "access_token" ? h.accessToken : h.refreshToken;
  return formPost(`${gw.url}/revoke`, { token, token_type_hint: which, client_id: h.client.client_id });
}

describe.each(STORES)(
  "a revocation on one instance, enforced by another ($name store)",
  ({ redis: useRedis }) => {
    let redis: TestRedis | undefined;
    const all: RunningGateway[] = [];
    /** The default revocation cache bound (5 s). */
    let pair: Pair;
    /** Verdicts cached for a minute: what is still cached after a test's steps is what was never dropped. */
    let longPair: Pair;

    async function pairOf(tree: Record<string, unknown>): Promise<Pair> {
      const first = await startFullGateway(tree, { redisUrl: redis?.url });
      await addLocalUser(first);
      const shared = redis
        ? { store: { type: "redis", redis: { url: redis.url, key_prefix: `t${first.port}:` } } }
        : {};
      const second = await startFullGateway(
        { ...tree, tokens: first.config.tokens, public_url: first.config.public_url, ...shared },
        { dataDir: first.dataDir },
      );
      all.push(first, second);
      return [first, second];
    }

    beforeAll(async () => {
      if (useRedis) {
        // Persistent, so that a restart keeps keys, grants and marks.
        redis = await startRedis({ persist: true });
        if (!redis) return;
      }
      pair = await pairOf({ ...SERVICES });
      longPair = await pairOf({ ...SERVICES, tokens: { revocation_cache: 60 } });
    }, 60_000);
    afterAll(async () => {
      for (const g of all.reverse()) await g.close({ wipe: true });
      await redis?.stop();
    });
    const skipWithoutRedis = (ctx: { skip: () => void }) => {
      if (useRedis && !redis) ctx.skip();
    };

    it("RFC 7009 /revoke of an access token", async (ctx) => {
      skipWithoutRedis(ctx);
      const [a, b] = pair;
      const h = await holder(a);
      expect(await verify(b, h.accessToken)).toBe(200);
      expect((await revoke(a, h, "access_token")).status).toBe(200);
      const ms = await msUntilRefused(b, h.accessToken, Date.now());
      console.log(`access token revoked on one instance: refused by the other after ${ms} ms`);
      expect(ms).toBeLessThan(REACH_MS);
    }, 60_000);

    it("RFC 7009 /revoke of a refresh token ends its grant's access tokens", async (ctx) => {
      skipWithoutRedis(ctx);
      const [a, b] = pair;
      const h = await holder(a);
      expect(await verify(b, h.accessToken)).toBe(200);
      expect((await revoke(a, h, "refresh_token")).status).toBe(200);
      const ms = await msUntilRefused(b, h.accessToken, Date.now());
      console.log(
        `refresh token revoked on one instance: its access token refused by the other after ${ms} ms`,
      );
      expect(ms).toBeLessThan(REACH_MS);
    }, 60_000);

    it("RFC 7592 DELETE /register/{id} ends the client's tokens", async (ctx) => {
      skipWithoutRedis(ctx);
      const [a, b] = pair;
      const h = await holder(a);
      expect(await verify(b, h.accessToken)).toBe(200);
      const res = await fetch(h.client.registration_client_uri, {
        method: "DELETE",
        headers: { authorization: `Bearer ${h.client.registration_access_token}` },
      });
      expect(res.status).toBe(204);
      const ms = await msUntilRefused(b, h.accessToken, Date.now());
      console.log(`client deleted on one instance: its token refused by the other after ${ms} ms`);
      expect(ms).toBeLessThan(REACH_MS);
    }, 60_000);

    it.skipIf(!BUILT && process.env.CI !== "true")(
      "`mcp-gateway admin users remove`, a process of its own, ends the user's tokens on both instances",
      async (ctx) => {
        skipWithoutRedis(ctx);
        const [a, b] = pair;
        await new LocalUsers(a.store).add("bob", "bob's long password");
        const bob = await accessTokenFor(a.url, [`${a.url}/notes/mcp`], {
          username: "bob",
          password: "bob's long password",
        });
        expect(await verify(a, bob.accessToken)).toBe(200);
        expect(await verify(b, bob.accessToken)).toBe(200);
        const file = join(a.dataDir, "admin.yaml");
        const store = redis
          ? `store: {type: redis, redis: {url: "${redis.url}", key_prefix: "t${a.port}:"}}\nkeys: {encryption_secret: "${REDIS_TEST_SECRET}"}\n`
          : "";
        writeFileSync(file, `data_dir: ${a.dataDir}\n${store}`);
        const removed = spawnSync(
          process.execPath,
          [BIN, "admin", "users", "remove", "bob", "--config", file],
          {
            encoding: "utf8",
          },
        );
        expect(`${removed.status} ${removed.stderr}`).toBe("0 ");
        const since = Date.now();
        const [msA, msB] = [
          await msUntilRefused(a, bob.accessToken, since),
          await msUntilRefused(b, bob.accessToken, since),
        ];
        console.log(`user removed by the admin CLI: refused after ${msA} ms and ${msB} ms`);
        expect(Math.max(msA, msB)).toBeLessThan(REACH_MS);
      },
      60_000,
    );

    it("a stream of revocations drops only the verdicts it names: other tokens stay cached", async (ctx) => {
      skipWithoutRedis(ctx);
      const [c, d] = longPair;
      const kept = await holder(c);
      const victims: Holder[] = [];
      for (let i = 0; i < 8; i++) victims.push(await holder(c));
      for (const h of [kept, ...victims]) expect(await verify(d, h.accessToken)).toBe(200);
      // Revocations on both instances, each enforced on d before the next.
      for (const [i, h] of victims.entries()) {
        const on = i % 2 === 0 ? c : d;
        expect((await revoke(on, h, i % 4 < 2 ? "access_token" : "refresh_token")).status).toBe(200);
        expect(await msUntilRefused(d, h.accessToken, Date.now())).toBeLessThan(REACH_MS);
      }
      const cache = revocationCache(d);
      const [hits, misses] = [await cache.hits(), await cache.misses()];
      expect(hits).toBeTypeOf("number");
      expect(await verify(d, kept.accessToken)).toBe(200);
      // Answered from the verdict cached before the revocations: a hit, and no miss.
      expect((await cache.hits()) as number).toBeGreaterThan(hits as number);
      expect(await cache.misses()).toBe(misses);
      expect(await metric(d, "mcpgw_cache_evictions_total", { cache: "revocation", reason: "cleared" })).toBe(
        0,
      );
    }, 120_000);

    it("a key rotation on one instance: tokens signed with the new key verify on the other at once", async (ctx) => {
      skipWithoutRedis(ctx);
      const [a, b] = pair;
      const h = await holder(a);
      // An unknown kid (any junk token) makes the other instance reload its keys, and then not
      // again for a few seconds; the rotation must not wait for that.
      const junk = await mintAccessToken(
        a.keys,
        { iss: a.config.public_url, aud: `${a.config.public_url}/notes/mcp` },
        { signWith: await foreignKey() },
      );
      expect(await verify(b, junk)).toBe(401);
      const kid = await a.keys.rotate();
      const res = await refresh(a, h.client, h.refreshToken);
      expect(res.status).toBe(200);
      const accessToken = res.body.access_token as string;
      expect(decodeProtectedHeader(accessToken).kid).toBe(kid);
      expect(await verify(b, accessToken)).toBe(200);
      // And the other instance signs with the new key too.
      const fromB = await holder(b);
      expect(decodeProtectedHeader(fromB.accessToken).kid).toBe(kid);
    }, 60_000);

    describe("on Redis only", () => {
      it("a lost subscription: verdicts cached while it was away are dropped when it is back", async (ctx) => {
        if (!useRedis || !redis) return ctx.skip();
        const [c, d] = longPair;
        const h = await holder(c);
        expect(await verify(d, h.accessToken)).toBe(200);
        const resyncs = (await metric(d, "mcpgw_change_feed_resyncs_total")) as number;
        expect(resyncs).toBeTypeOf("number");
        const control = new Redis(redis.url);
        const [, maxclients] = (await control.config("GET", "maxclients")) as [string, string];
        try {
          // Subscribers are disconnected and cannot come back; the store connections stay.
          await control.config("SET", "maxclients", "1");
          await control.client("KILL", "TYPE", "pubsub");
          await waitFor(async () => (await metric(d, "mcpgw_change_feed_listening")) === 0);
          expect((await revoke(c, h, "access_token")).status).toBe(200);
          // Nobody heard it: d still serves its cached verdict (within the cache bound, as before).
          expect(await verify(d, h.accessToken)).toBe(200);
        } finally {
          await control.config("SET", "maxclients", maxclients);
          control.disconnect();
        }
        const back = Date.now();
        const ms = await msUntilRefused(d, h.accessToken, back);
        console.log(`subscription back: stale verdict dropped after ${ms} ms`);
        // Reconnecting takes up to 500 ms (redis-client.ts), then subscribe and resync.
        expect(ms).toBeLessThan(REACH_MS + 500);
        expect((await metric(d, "mcpgw_change_feed_resyncs_total")) as number).toBeGreaterThan(resyncs);
      }, 60_000);

      it("Redis restarted: the subscription is back, every verdict is re-read, revocations reach again", async (ctx) => {
        if (!useRedis || !redis) return ctx.skip();
        const [c, d] = longPair;
        const h = await holder(c);
        expect(await verify(d, h.accessToken)).toBe(200);
        const resyncs = (await metric(d, "mcpgw_change_feed_resyncs_total")) as number;
        await redis.restart();
        await waitFor(
          async () =>
            (await metric(d, "mcpgw_change_feed_listening")) === 1 &&
            ((await metric(d, "mcpgw_change_feed_resyncs_total")) as number) > resyncs,
        );
        const misses = (await revocationCache(d).misses()) as number;
        expect(await verify(d, h.accessToken)).toBe(200);
        // No verdict from before the restart was trusted: this one was read from Redis again.
        expect((await revocationCache(d).misses()) as number).toBeGreaterThan(misses);
        expect((await revoke(c, h, "access_token")).status).toBe(200);
        const ms = await msUntilRefused(d, h.accessToken, Date.now());
        console.log(`after a Redis restart: revocation refused by the other instance after ${ms} ms`);
        expect(ms).toBeLessThan(REACH_MS);
      }, 60_000);
    });
  },
);

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(50);
  }
}
