/**
 * /account lists a person's grants through their owner index, on a real Redis holding other
 * people's grants: exactly their own, including grants stored before the owner indexes existed
 * (indexed by the once-per-store migration the page waits for), and without reading the grants
 * namespace (no SCAN reaches Redis while the page is served; Redis counts the commands it ran).
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GrantStore } from "../../src/oauth/grant-store.js";
import { RedisStore } from "../../src/store/redis.js";
import { addLocalUser, LOGIN } from "../oauth/helpers.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import type { Browser } from "../support/oauth-client.js";
import { type RedirectTarget, startRedirectTarget } from "../support/redirect-target.js";
import { redisAvailable, startRedis, type TestRedis } from "../support/redis.js";
import { signedInBrowser } from "../support/sign-in.js";
import { freePort } from "../support/upstream.js";

const canRun = redisAvailable() || process.env.CI === "true";
const OTHERS = 200;

const grantRecord = (sid: string, sub: string, clientId: string) => ({
  sid,
  client_id: clientId,
  user: { sub, login: sub, provider: "local" },
  scope: [],
  resources: [],
  created_at: Math.floor(Date.now() / 1000),
  auth_time: Math.floor(Date.now() / 1000),
});

describe.runIf(canRun)("/account reads the person's own grants from their owner index", () => {
  let redis: TestRedis;
  let gw: RunningGateway;
  let target: RedirectTarget;
  let counter: Redis;
  const alicesOld = randomUUID();
  const alicesNew = randomUUID();
  const othersSids: string[] = [];

  beforeAll(async () => {
    redis = (await startRedis()) as TestRedis;
    const port = await freePort();
    // What an older version left: grants with no owner index entries, migration not yet run.
    const before = await RedisStore.connect({ url: redis.url, key_prefix: `t${port}:` });
    await before.put("grants", alicesOld, grantRecord(alicesOld, LOGIN.username, "app-of-the-old-days"));
    const bobsOld = randomUUID();
    await before.put("grants", bobsOld, grantRecord(bobsOld, "bob", "app-of-the-old-days"));
    othersSids.push(bobsOld);
    // And many other people's grants, written as today's gateway writes them (indexed).
    const grants = new GrantStore(before, { code: 60, refresh: 86_400 });
    for (let i = 0; i < OTHERS; i++) {
      const sid = randomUUID();
      await grants.saveGrant(grantRecord(sid, `someone-${i % 20}`, `client-${i % 7}`));
      othersSids.push(sid);
    }
    // Someone whose sub is alice's on another provider: not hers.
    const lookalike = randomUUID();
    await grants.saveGrant({
      ...grantRecord(lookalike, LOGIN.username, "client-0"),
      user: { sub: LOGIN.username, login: LOGIN.username, provider: "github" },
    });
    othersSids.push(lookalike);
    await before.close();

    gw = await startFullGateway({}, { redisUrl: redis.url, port });
    await addLocalUser(gw);
    await gw.as.grants.saveGrant(grantRecord(alicesNew, LOGIN.username, "app-of-today"));
    target = await startRedirectTarget();
    counter = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await counter.connect();
  }, 120_000);
  afterAll(async () => {
    counter?.disconnect();
    await gw?.close({ wipe: true });
    await target?.close();
    await redis?.stop();
  });

  /** alice's browser, signed in (an authorization whose redirect back is not followed). */
  const signedIn = (): Promise<Browser> =>
    signedInBrowser(gw.url, { redirectUri: target.url, clientName: "Account Test", login: LOGIN });

  const listedGrants = (page: string) =>
    [...page.matchAll(/name="grant" value="([^"]+)"/g)].map((m) => m[1] as string).sort();

  it("shows exactly alice's grants, the one stored before the index included", async () => {
    const browser = await signedIn();
    const res = await browser.get(`${gw.url}/account`);
    expect(res.status).toBe(200);
    const page = await res.text();
    expect(listedGrants(page)).toEqual([alicesNew, alicesOld].sort());
    for (const sid of othersSids) expect(page).not.toContain(sid);
  });

  it("serves the page without scanning the grants namespace", async () => {
    const browser = await signedIn();
    await browser.get(`${gw.url}/account`); // anything left to do once happens before the count
    await counter.config("RESETSTAT");
    const page = await (await browser.get(`${gw.url}/account`)).text();
    expect(listedGrants(page)).toEqual([alicesNew, alicesOld].sort());
    const stats = (await counter.info("commandstats")).split("\r\n");
    expect(stats.filter((l) => /^cmdstat_(scan|keys):/.test(l))).toEqual([]);
    // The count is live: the page's own reads are in it.
    expect(stats.some((l) => /^cmdstat_(zrangebyscore|zrange):/.test(l))).toBe(true);
  });
});
