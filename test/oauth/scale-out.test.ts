/**
 * Two gateway instances on one store (a shared Redis, or one SQLite file), as a scaled-out
 * deployment runs them: a refresh token rotates exactly once whichever instance sees it, and
 * the reuse rules hold across instances, not only within one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { registerClient } from "../support/oauth-client.js";
import { startRedis, type TestRedis } from "../support/redis.js";
import { addLocalUser, expectFamilyEnded, obtainTokens, refresh, SERVICES, STORES } from "./helpers.js";

/** A second instance sharing `first`'s store and issuer. */
function secondInstance(first: RunningGateway, redis: TestRedis | undefined): Promise<RunningGateway> {
  const shared = redis
    ? { store: { type: "redis", redis: { url: redis.url, key_prefix: `t${first.port}:` } } }
    : {};
  return startFullGateway(
    { ...SERVICES, tokens: first.config.tokens, public_url: first.config.public_url, ...shared },
    { dataDir: first.dataDir },
  );
}

describe.each(STORES)("two instances on one $name store", ({ redis: useRedis }) => {
  let redis: TestRedis | undefined;
  /** Default reuse grace (10 s): concurrent refreshes are two tabs, not theft. */
  const lenient: RunningGateway[] = [];
  /** No grace: any second use of a rotated refresh token is theft. */
  const strict: RunningGateway[] = [];

  beforeAll(async () => {
    if (useRedis) {
      redis = await startRedis();
      if (!redis) return;
    }
    const redisUrl = redis?.url;
    const first = await startFullGateway(SERVICES, { redisUrl });
    const firstStrict = await startFullGateway(
      { ...SERVICES, tokens: { refresh_reuse_grace: 0 } },
      { redisUrl },
    );
    await Promise.all([first, firstStrict].map(addLocalUser));
    lenient.push(first, await secondInstance(first, redis));
    strict.push(firstStrict, await secondInstance(firstStrict, redis));
  });
  afterAll(async () => {
    for (const g of [...lenient, ...strict].reverse()) await g.close({ wipe: true });
    await redis?.stop();
  });

  /** One login on the first instance, then 20 refreshes of its token at once, alternating instances. */
  async function refreshOnBoth(pair: RunningGateway[]) {
    const [a, b] = pair as [RunningGateway, RunningGateway];
    const client = await registerClient(a.url);
    const { refresh_token: token } = await obtainTokens(a, client);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => refresh(i % 2 ? b : a, client, token)),
    );
    return { results, refreshOnB: (successor: string) => refresh(b, client, successor) };
  }

  it("serves 20 parallel refreshes of one token spread over both, inside the grace window", async (ctx) => {
    if (useRedis && !redis) ctx.skip();
    const { results, refreshOnB } = await refreshOnBoth(lenient);
    expect(results.map((r) => `${r.status} ${r.body.error ?? ""}`)).toEqual(Array(20).fill("200 "));
    expect((await refreshOnB(results[0]?.body.refresh_token as string)).status).toBe(200);
  });

  it("without grace, rotates once and treats the others as reuse: the family ends", async (ctx) => {
    if (useRedis && !redis) ctx.skip();
    const { results, refreshOnB } = await refreshOnBoth(strict);
    await expectFamilyEnded(results, refreshOnB);
  });
});
