/**
 * Client authentication at /token reads client records through a per-instance cache
 * (ClientStore.cached), bounded by tokens.revocation_cache.
 *
 * Two instances on one store: a change made on one (an RFC 7592 update, a deletion as
 * `admin clients delete` makes it) reaches the other's cache through the store's change feed,
 * not by the cache running out. The cache there lives an hour, so only the feed can make those
 * tests pass in time.
 *
 * A change the feed never carries (`admin restore`, the CLI as a process, rolling a client
 * record back) reaches a running gateway within tokens.revocation_cache, as README says.
 *
 * A Redis outage (redis-server stopped): a client authenticating at /token, from the cache or
 * not, gets 503 temporarily_unavailable with Retry-After, and nothing is spent: its
 * authorization code and refresh token work once Redis is back.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientStore } from "../../src/oauth/clients.js";
import { openStore } from "../../src/store/open.js";
import { BUILT, cli } from "../e2e/serve-process.js";
import { REDIS_TEST_SECRET, type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { type RegisteredClient, registerClient } from "../support/oauth-client.js";
import { redisAvailable, startRedis, type TestRedis } from "../support/redis.js";
import { addLocalUser, obtainCode, obtainTokens, redeem, refresh, SERVICES, STORES } from "./helpers.js";

const TREE = { ...SERVICES, tokens: { revocation_cache: 3600 } };

describe.each(STORES)("client records cached per instance, $name store", ({ redis: useRedis }) => {
  let redis: TestRedis | undefined;
  let first: RunningGateway;
  let second: RunningGateway;

  beforeAll(async () => {
    if (useRedis) {
      redis = await startRedis();
      if (!redis) return;
    }
    first = await startFullGateway(TREE, { redisUrl: redis?.url });
    await addLocalUser(first);
    second = await startFullGateway(
      {
        ...TREE,
        public_url: first.config.public_url,
        ...(redis
          ? { store: { type: "redis", redis: { url: redis.url, key_prefix: `t${first.port}:` } } }
          : {}),
      },
      { dataDir: first.dataDir },
    );
  }, 120_000);
  afterAll(async () => {
    await second?.close();
    await first?.close({ wipe: true });
    await redis?.stop();
  });

  const skipWithoutRedis = (ctx: { skip: () => void }) => {
    if (useRedis && !redis) ctx.skip();
  };

  /** A confidential client with tokens from the first instance, refreshed twice on the second. */
  async function warmedOnSecond(): Promise<{ client: RegisteredClient; refreshToken: string }> {
    const client = await registerClient(first.url, {
      token_endpoint_auth_method: "client_secret_basic",
      grant_types: ["authorization_code", "refresh_token"],
    });
    let refreshToken = (await obtainTokens(first, client)).refresh_token;
    const clientsCache = second.as.parts.caches?.all().find((c) => c.name === "clients");
    const hitsBefore = clientsCache?.hits ?? 0;
    // Refreshed until one authenticates the client from the cache: the first refresh fills it,
    // but the first instance's use mark (first_token_at, written by the code redemption) may
    // reach this instance's feed only after that and drop the entry again (on a busy machine
    // SQLite's polled feed is late), so the next refresh may miss once more.
    const giveUpAt = Date.now() + 15_000;
    do {
      const res = await refresh(second, client, refreshToken);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      refreshToken = res.body.refresh_token as string;
    } while ((clientsCache?.hits ?? 0) <= hitsBefore && Date.now() < giveUpAt);
    expect(clientsCache?.hits ?? 0).toBeGreaterThan(hitsBefore);
    return { client, refreshToken };
  }

  it("an RFC 7592 update on one instance is what the other authenticates against next", async (ctx) => {
    skipWithoutRedis(ctx);
    const { client, refreshToken } = await warmedOnSecond();
    await forbidRefresh(client);
    // The client may no longer refresh: the second instance knows once the feed delivered the
    // change. (Polled with a token that is not one, so that a poll before then spends nothing.)
    await expect
      .poll(async () => (await refresh(second, client, "not-a-token")).body.error, { timeout: 15_000 })
      .toBe("unauthorized_client");
    expect((await refresh(second, client, refreshToken)).body.error).toBe("unauthorized_client");
  }, 120_000);

  it("a client deleted in the store by another process is refused by the other instance", async (ctx) => {
    skipWithoutRedis(ctx);
    const { client, refreshToken } = await warmedOnSecond();
    // What `admin clients delete` does first, from its own store connection.
    const cli = await openStore(first.config);
    try {
      expect(await new ClientStore(cli).delete(client.client_id)).toBe(true);
    } finally {
      await cli.close();
    }
    await expect
      .poll(async () => (await refresh(second, client, "not-a-token")).status, { timeout: 15_000 })
      .toBe(401);
    expect((await refresh(second, client, refreshToken)).body.error).toBe("invalid_client");
  }, 120_000);
});

/** An RFC 7592 update of `client` that takes the refresh_token grant away (published at once). */
async function forbidRefresh(client: RegisteredClient): Promise<void> {
  const { registration_client_uri: uri, registration_access_token: bearer, client_secret, ...rest } = client;
  const update = await fetch(uri as string, {
    method: "PUT",
    headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
    body: JSON.stringify({
      ...rest,
      client_id: client.client_id,
      client_secret,
      grant_types: ["authorization_code"],
    }),
  });
  expect(update.status, await update.clone().text()).toBe(200);
}

/**
 * Refreshes on `gw` until one authenticates the client from its cache (the first fills it; a
 * use mark heard late may drop it once more). Returns the latest refresh token.
 */
async function warmed(gw: RunningGateway, client: RegisteredClient, refreshToken: string): Promise<string> {
  const clientsCache = gw.as.parts.caches?.all().find((c) => c.name === "clients");
  const hitsBefore = clientsCache?.hits ?? 0;
  const giveUpAt = Date.now() + 15_000;
  let token = refreshToken;
  do {
    const res = await refresh(gw, client, token);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    token = res.body.refresh_token as string;
  } while ((clientsCache?.hits ?? 0) <= hitsBefore && Date.now() < giveUpAt);
  expect(clientsCache?.hits ?? 0).toBeGreaterThan(hitsBefore);
  return token;
}

describe.runIf(redisAvailable() || process.env.CI === "true")(
  "client authentication while Redis is down",
  () => {
    let redis: TestRedis;
    let gw: RunningGateway;

    beforeAll(async () => {
      // Append-only, fsync always: what was written before the outage is there after it.
      redis = (await startRedis({ persist: true })) as TestRedis;
      gw = await startFullGateway(TREE, { redisUrl: redis.url });
      await addLocalUser(gw);
    }, 120_000);
    afterAll(async () => {
      await redis?.start().catch(() => undefined);
      await gw?.close({ wipe: true });
      await redis?.stop();
    });

    it("answers 503 temporarily_unavailable with Retry-After, and spends neither a code nor a refresh token", async () => {
      const confidential = { token_endpoint_auth_method: "client_secret_basic" } as const;
      const grants = { grant_types: ["authorization_code", "refresh_token"] };
      // One client whose record this instance has cached, one it has never authenticated.
      const cachedClient = await registerClient(gw.url, { ...confidential, ...grants });
      const refreshToken = await warmed(
        gw,
        cachedClient,
        (await obtainTokens(gw, cachedClient)).refresh_token,
      );
      const cachedCode = await obtainCode(gw, cachedClient);
      const freshClient = await registerClient(gw.url, { ...confidential, ...grants });
      const freshCode = await obtainCode(gw, freshClient);

      await redis.kill("SIGTERM");
      const during = [
        await refresh(gw, cachedClient, refreshToken),
        await redeem(gw, cachedClient, cachedCode),
        await redeem(gw, freshClient, freshCode),
      ];
      for (const res of during) {
        expect(res.status, JSON.stringify(res.body)).toBe(503);
        expect(res.body.error).toBe("temporarily_unavailable");
        expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
      }

      await redis.start();
      // The client retries, as Retry-After told it to: the first answers may still be 503.
      const afterOutage = async (send: () => ReturnType<typeof refresh>) => {
        let res = await send();
        const giveUpAt = Date.now() + 15_000;
        while (res.status === 503 && Date.now() < giveUpAt) res = await send();
        return res;
      };
      const refreshed = await afterOutage(() => refresh(gw, cachedClient, refreshToken));
      expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
      const redeemed = await afterOutage(() => redeem(gw, cachedClient, cachedCode));
      expect(redeemed.status, JSON.stringify(redeemed.body)).toBe(200);
      const freshRedeemed = await afterOutage(() => redeem(gw, freshClient, freshCode));
      expect(freshRedeemed.status, JSON.stringify(freshRedeemed.body)).toBe(200);
    }, 120_000);
  },
);

/** Resolves once a change published now has reached `gw`: every earlier one has too (the feed keeps order). */
async function feedSettled(gw: RunningGateway): Promise<void> {
  const marker = randomUUID();
  let heard: () => void = () => {};
  const arrived = new Promise<void>((r) => {
    heard = r;
  });
  const unfollow = await gw.store.changes.subscribe("test-settle", {
    change: (key) => {
      if (key === marker) heard();
    },
    resync: () => {},
  });
  try {
    await gw.store.changes.publish("test-settle", marker);
    await arrived;
  } finally {
    unfollow();
  }
}

/** Cached for 3 s: a change the feed does not carry is seen within that. */
const RESTORE_CACHE_S = 3;

describe.runIf(BUILT || process.env.CI === "true").each(STORES)(
  "admin restore rolls a client record back on a running gateway, $name store",
  ({ redis: useRedis }) => {
    let redis: TestRedis | undefined;
    let gw: RunningGateway;
    let dir: string;
    let configFile: string;

    beforeAll(async () => {
      if (useRedis) {
        redis = await startRedis();
        if (!redis) return;
      }
      gw = await startFullGateway(
        { ...SERVICES, tokens: { revocation_cache: RESTORE_CACHE_S } },
        { redisUrl: redis?.url },
      );
      await addLocalUser(gw);
      // The CLI's config: the gateway's store (SQLite: its data dir, with the generated secret).
      dir = mkdtempSync(join(tmpdir(), "mcpgw-restore-"));
      configFile = join(dir, "gateway.yaml");
      writeFileSync(
        configFile,
        JSON.stringify(
          redis
            ? {
                data_dir: dir,
                store: { type: "redis", redis: { url: redis.url, key_prefix: `t${gw.port}:` } },
                keys: { encryption_secret: REDIS_TEST_SECRET },
              }
            : { data_dir: gw.dataDir },
        ),
      );
    }, 120_000);
    afterAll(async () => {
      await gw?.close({ wipe: true });
      await redis?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("within tokens.revocation_cache, without the change feed", async (ctx) => {
      if (useRedis && !redis) ctx.skip();
      const client = await registerClient(gw.url, {
        token_endpoint_auth_method: "client_secret_basic",
        grant_types: ["authorization_code", "refresh_token"],
      });
      const refreshToken = (await obtainTokens(gw, client)).refresh_token;
      const backupFile = join(dir, "backup.json");
      const backup = cli(["admin", "backup", backupFile, "--force", "--config", configFile], { cwd: dir });
      expect(backup.status, backup.stderr).toBe(0);

      // The client may no longer refresh (an RFC 7592 update: published, seen at once) ...
      await forbidRefresh(client);
      await expect
        .poll(async () => (await refresh(gw, client, "not-a-token")).body.error, { timeout: 15_000 })
        .toBe("unauthorized_client");
      // Every change published so far has reached this gateway (a late one, the use mark, say,
      // would drop the cached record and pass this test for the wrong reason) ...
      await feedSettled(gw);
      // ... and it holds the updated record in its cache (a poll with a token that is not one spends nothing).
      const clientsCache = gw.as.parts.caches?.all().find((c) => c.name === "clients");
      const hitsBefore = clientsCache?.hits ?? 0;
      await expect
        .poll(
          async () => {
            const res = await refresh(gw, client, "not-a-token");
            return res.body.error === "unauthorized_client" && (clientsCache?.hits ?? 0) > hitsBefore;
          },
          { timeout: 15_000 },
        )
        .toBe(true);
      const invalidatedBefore = clientsCache?.removed.invalidated;

      // The restore puts the backup's record back, from another process, and publishes nothing.
      const restore = cli(["admin", "restore", backupFile, "--config", configFile], { cwd: dir });
      expect(restore.status, restore.stderr).toBe(0);
      const restoredAt = Date.now();
      // Within revocation_cache (plus a second for the machine), the restored record authenticates:
      // the client is let through to the grant again (invalid_grant is about the token).
      await expect
        .poll(async () => (await refresh(gw, client, "not-a-token")).body.error, {
          timeout: RESTORE_CACHE_S * 1000 + 1_000,
          interval: 100,
        })
        .toBe("invalid_grant");
      expect(Date.now() - restoredAt).toBeLessThanOrEqual(RESTORE_CACHE_S * 1000 + 1_000);
      // The cached copy ran out; no change heard dropped it.
      expect(clientsCache?.removed.invalidated).toBe(invalidatedBefore);
      const res = await refresh(gw, client, refreshToken);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    }, 120_000);
  },
);
