/**
 * Two gateway instances on one store (a shared Redis, or one SQLite file), as a scaled-out
 * deployment runs them: a refresh token rotates exactly once whichever instance sees it, the
 * grace window hands out the same successor (never a second chain), and the reuse rules hold
 * across instances, not only within one. The same scenarios run over two processes on one
 * SQLite file in rotation-processes.test.ts.
 */
import { afterAll, beforeAll, describe, it } from "vitest";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { registerClient } from "../support/oauth-client.js";
import { startRedis, type TestRedis } from "../support/redis.js";
import { addLocalUser, expectFamilyEnded, obtainTokens, refresh, SERVICES, STORES } from "./helpers.js";
import {
  type Pair,
  refreshStorm,
  replayOnTheOtherGateway,
  SEALING,
  stormServesOneSuccessor,
  twoRotationsOldEndsTheGrant,
} from "./rotation-scenarios.js";

/** A second instance sharing `first`'s store, issuer and config. */
function secondInstance(
  first: RunningGateway,
  tree: Record<string, unknown>,
  redis: TestRedis | undefined,
): Promise<RunningGateway> {
  const shared = redis
    ? { store: { type: "redis", redis: { url: redis.url, key_prefix: `t${first.port}:` } } }
    : {};
  return startFullGateway(
    { ...tree, tokens: first.config.tokens, public_url: first.config.public_url, ...shared },
    { dataDir: first.dataDir },
  );
}

describe.each(STORES)("two instances on one $name store", ({ redis: useRedis }) => {
  let redis: TestRedis | undefined;
  const all: RunningGateway[] = [];
  /** Default reuse grace (10 s) and a sealing secret: the grace window serves the same successor. */
  let sealed: Pair;
  /** No grace: any second use of a rotated refresh token is theft. */
  let strict: Pair;

  async function pairOf(tree: Record<string, unknown>): Promise<Pair> {
    const first = await startFullGateway(tree, { redisUrl: redis?.url });
    await addLocalUser(first);
    const second = await secondInstance(first, tree, redis);
    all.push(first, second);
    return [first, second];
  }

  beforeAll(async () => {
    if (useRedis) {
      redis = await startRedis();
      if (!redis) return;
    }
    sealed = await pairOf({ ...SERVICES, ...SEALING });
    strict = await pairOf({ ...SERVICES, ...SEALING, tokens: { refresh_reuse_grace: 0 } });
  });
  afterAll(async () => {
    for (const g of all.reverse()) await g.close({ wipe: true });
    await redis?.stop();
  });

  const skipWithoutRedis = (ctx: { skip: () => void }) => {
    if (useRedis && !redis) ctx.skip();
  };

  it("answers 20 parallel refreshes of one token over both with one successor; one token works after", async (ctx) => {
    skipWithoutRedis(ctx);
    await stormServesOneSuccessor(sealed);
  });

  it("refuses a token two rotations old and ends the grant on both", async (ctx) => {
    skipWithoutRedis(ctx);
    await twoRotationsOldEndsTheGrant(sealed);
  });

  it("answers a replay on the other instance with the same successor, not a second chain", async (ctx) => {
    skipWithoutRedis(ctx);
    await replayOnTheOtherGateway(sealed);
  });

  it("without grace, rotates once and treats the others as reuse: the family ends", async (ctx) => {
    skipWithoutRedis(ctx);
    const client = await registerClient(strict[0].url);
    const { refresh_token: token } = await obtainTokens(strict[0], client);
    const results = await refreshStorm(strict, client, token);
    await expectFamilyEnded(results, (successor) => refresh(strict[1], client, successor));
  });
});
