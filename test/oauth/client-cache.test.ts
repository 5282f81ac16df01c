/**
 * Client authentication at /token reads client records through a per-instance cache
 * (ClientStore.cached). Two instances on one store: a change made on one (an RFC 7592 update,
 * a deletion as `admin clients delete` makes it) reaches the other's cache through the store's
 * change feed, not by the cache running out. The cache here lives an hour
 * (tokens.revocation_cache), so only the feed can make these tests pass in time.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientStore } from "../../src/oauth/clients.js";
import { openStore } from "../../src/store/open.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { type RegisteredClient, registerClient } from "../support/oauth-client.js";
import { startRedis, type TestRedis } from "../support/redis.js";
import { addLocalUser, obtainTokens, refresh, SERVICES, STORES } from "./helpers.js";

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
    const {
      registration_client_uri: uri,
      registration_access_token: bearer,
      client_secret,
      ...rest
    } = client;
    const update = await fetch(uri, {
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
