/**
 * The device grant (RFC 8628) while its store is down: a real redis-server (append-only file)
 * killed with SIGKILL after a device has its codes and its person is signed in. Every device
 * request (/device_authorization, polling /token) is answered 503 `temporarily_unavailable`
 * OAuth JSON with Retry-After, every step of the /device page a 503 page, never a 500; once
 * Redis is back the same device code is still pending and the login completes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addLocalUser, LOGIN, SERVICES } from "../oauth/helpers.js";
import {
  answerDevice,
  approveDevice,
  deviceAuthorization,
  enterCode,
  openDevicePage,
  pollOnce,
  registerDeviceClient,
  startDevice,
} from "../support/device.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { Browser } from "../support/oauth-client.js";
import { redisAvailable, startRedis, type TestRedis } from "../support/redis.js";

/** Waits for `check` to hold, trying every 100 ms. */
async function until(check: () => Promise<boolean>, what: string, withinMs = 30_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!redisAvailable() && process.env.CI !== "true")("device grant during a Redis outage", () => {
  let redis: TestRedis;
  let gw: RunningGateway;

  beforeAll(async () => {
    redis = (await startRedis({ persist: true })) as TestRedis;
    if (!redis) throw new Error("redis-server did not start");
    gw = await startFullGateway({ ...SERVICES }, { redisUrl: redis.url });
    await addLocalUser(gw);
  }, 60_000);
  afterAll(async () => {
    await gw?.close({ wipe: true });
    await redis?.stop();
  });

  it("answers the device 503 temporarily_unavailable JSON and the person a 503 page, then carries on", async () => {
    const client = await registerDeviceClient(gw.url);
    const codes = await startDevice(gw.url, client);
    const person = new Browser();
    const { csrf } = await openDevicePage(gw.url, person, codes.verification_uri, LOGIN);

    await redis.kill("SIGKILL");
    try {
      const machine = [
        ["/device_authorization", await deviceAuthorization(gw.url, { client_id: client.client_id })],
        ["/token", await pollOnce(gw.url, client, codes.device_code)],
      ] as const;
      for (const [path, res] of machine) {
        expect(`${res.status} ${res.body.error}`, path).toBe("503 temporarily_unavailable");
        expect(Number(res.headers.get("retry-after")), path).toBeGreaterThan(0);
        expect(res.headers.get("content-type"), path).toMatch(/^application\/json/);
      }

      const pageGet = await person.get(codes.verification_uri);
      const pages = [
        ["GET /device", { status: pageGet.status, html: await pageGet.text(), headers: pageGet.headers }],
        ["POST /device", await enterCode(gw.url, person, csrf, codes.user_code)],
      ] as const;
      for (const [step, res] of pages) {
        expect(res.status, step).toBe(503);
        expect(res.headers.get("content-type"), step).toMatch(/^text\/html/);
        expect(Number(res.headers.get("retry-after")), step).toBeGreaterThan(0);
        expect(res.html, step).toContain("Temporarily unavailable");
      }
      const consent = await answerDevice(gw.url, person, csrf, codes.user_code, "allow");
      expect(consent.status).toBe(503);
      expect(consent.html).toContain("Temporarily unavailable");
    } finally {
      await redis.start();
    }

    // Nothing was spent or decided while Redis was down: the same code is still waiting.
    await until(
      async () => (await pollOnce(gw.url, client, codes.device_code)).status !== 503,
      "the gateway to reach Redis again",
    );
    const pending = await pollOnce(gw.url, client, codes.device_code);
    expect(["authorization_pending", "slow_down"]).toContain(pending.body.error);
    await approveDevice(gw.url, codes, LOGIN);
    await until(
      async () => (await pollOnce(gw.url, client, codes.device_code)).status === 200,
      "the tokens",
      30_000,
    );
  }, 120_000);
});
