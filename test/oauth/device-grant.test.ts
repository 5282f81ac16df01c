/**
 * The device_code grant (RFC 8628 §3.4, §3.5) as a table, on both real stores: every answer
 * /token can give a polling device, from the state its request is in. The grant is wired as the
 * authorization server wires it (its GrantStore, TokenIssuer and endGrant on the same store);
 * only the clock of the device requests is the test's own, so expiry and pace are exact.
 */
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../../src/config/load.js";
import { ResourceIndex } from "../../src/config/resources.js";
import type { GatewayConfig } from "../../src/config/schema.js";
import { createIdentityProvider } from "../../src/idp/create.js";
import type { UserIdentity } from "../../src/idp/idp.js";
import type { ClientRecord } from "../../src/oauth/clients.js";
import { DeviceStore } from "../../src/oauth/device-store.js";
import { OAuthError } from "../../src/oauth/errors.js";
import { DEVICE_CODE_GRANT, DeviceCodeGrant } from "../../src/oauth/grants/device-code.js";
import { TokenIssuer, type TokenResponse } from "../../src/oauth/issuer.js";
import { KeyRing } from "../../src/oauth/keys.js";
import { AuthorizationServer } from "../../src/oauth/server.js";
import type { AuditEvent } from "../../src/ops/audit.js";
import { RedisStore } from "../../src/store/redis.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { Store } from "../../src/store/store.js";
import { Revocations } from "../../src/tokens/revocations.js";
import { startRedis, type TestRedis } from "../support/redis.js";
import { STORES } from "./helpers.js";

const ISSUER = "http://127.0.0.1:9";
const NOTES = `${ISSUER}/notes/mcp`;
const FILES = `${ISSUER}/files/mcp`;
const ALICE: UserIdentity = { sub: "alice", login: "alice", provider: "local" };
const TTL = 600;
const INTERVAL = 5;

function client(id: string, grantTypes: string[]): ClientRecord {
  return {
    client_id: id,
    redirect_uris: [],
    token_endpoint_auth_method: "none",
    grant_types: grantTypes,
    response_types: [],
    client_id_issued_at: 0,
    client_secret_expires_at: 0,
    source: "dcr",
  };
}
const DEVICE = client("device-app", [DEVICE_CODE_GRANT, "refresh_token"]);
const NO_REFRESH = client("device-no-refresh", [DEVICE_CODE_GRANT]);
const OTHER = client("other-app", [DEVICE_CODE_GRANT]);

/** What a poll came to: the tokens, or the error code. */
type Answer = { tokens: TokenResponse } | { error: string; description: string };

describe.each(STORES)("device_code grant answers on $name", ({ redis: useRedis }) => {
  let redis: TestRedis | undefined;
  let store: Store;
  let as: AuthorizationServer;
  let keys: KeyRing;
  let config: GatewayConfig;
  let grant: DeviceCodeGrant;
  let devices: DeviceStore;
  const audit: AuditEvent[] = [];
  /** The device requests' clock (epoch ms); tests move it forward. */
  let now = Date.now();

  beforeAll(async () => {
    if (useRedis) {
      redis = await startRedis();
      if (!redis) return;
      store = await RedisStore.connect({ url: redis.url, key_prefix: "device-grant:" });
    } else {
      store = new SqliteStore(":memory:");
    }
    config = validateConfig({
      public_url: ISSUER,
      log_level: "silent",
      services: {
        notes: { url: "http://127.0.0.1:9/mcp", scopes: ["notes:read"] },
        files: { url: "http://127.0.0.1:9/mcp", scopes: ["files:read"] },
      },
    });
    const encryptionSecret = "device grant table test secret";
    keys = await KeyRing.open(store, {
      alg: "ES256",
      accessTtlSeconds: config.tokens.access_ttl,
      encryptionSecret,
    });
    const revocations = new Revocations(store, 0, config.tokens.refresh_ttl);
    as = new AuthorizationServer({
      config,
      store,
      keys,
      revocations,
      resources: new ResourceIndex(config),
      idp: await createIdentityProvider(config, store),
      audit: { emit: (e) => audit.push(e) },
      encryptionSecret,
    });
    devices = new DeviceStore(store, { ttl: TTL, interval: INTERVAL }, () => now);
    const issuer = new TokenIssuer(keys, ISSUER, config.tokens.access_ttl, as.audit);
    grant = new DeviceCodeGrant(devices, as.grants, issuer, as.endGrant);
  });
  afterAll(async () => {
    keys?.close();
    await as?.close();
    await store?.close();
    await redis?.stop();
  });

  const skipWithoutRedis = (ctx: { skip: () => void }) => {
    if (useRedis && !redis) ctx.skip();
  };

  const poll = async (
    deviceCode: string | undefined,
    by = DEVICE,
    resources: string[] = [],
  ): Promise<Answer> => {
    try {
      return { tokens: await grant.handle({ client: by, params: { device_code: deviceCode }, resources }) };
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      expect(err.status, err.code).toBe(400);
      return { error: err.code, description: err.description };
    }
  };
  const errorOf = (answer: Answer) => ("error" in answer ? answer.error : "tokens");

  /** A new request for `who`, asking for the notes service. */
  const requested = (who = DEVICE) =>
    devices.create({ client_id: who.client_id, scope: ["notes:read"], resources: [NOTES] });

  /** The person's answer, as /device/consent records it. */
  const answer = async (userCode: string, approved: boolean) => {
    const found = await devices.findByUserCode(userCode);
    if (!found) throw new Error(`no request for ${userCode}`);
    const decided = await devices.decide(
      found,
      approved
        ? { approved: true, user: ALICE, auth_time: 1000, at: now }
        : { approved: false, user: "alice", at: now },
    );
    expect(decided).toBe(true);
  };

  it.for([
    { name: "no device_code", deviceCode: undefined, error: "invalid_request" },
    { name: "an unknown device_code", deviceCode: "not-a-device-code", error: "invalid_grant" },
  ])("answers $name with $error", async (row, ctx) => {
    skipWithoutRedis(ctx);
    expect(errorOf(await poll(row.deviceCode))).toBe(row.error);
  });

  it("answers authorization_pending while the person has not answered, at the interval", async (ctx) => {
    skipWithoutRedis(ctx);
    const { deviceCode, interval } = await requested();
    expect(interval).toBe(INTERVAL);
    for (let i = 0; i < 3; i++) {
      expect(errorOf(await poll(deviceCode))).toBe("authorization_pending");
      now += interval * 1000;
    }
  });

  it("answers slow_down to a device polling sooner than its interval, and the interval grows by 5 s each time", async (ctx) => {
    skipWithoutRedis(ctx);
    const { deviceCode } = await requested();
    expect(errorOf(await poll(deviceCode))).toBe("authorization_pending");
    now += 1000;
    const first = await poll(deviceCode);
    expect(first).toMatchObject({ error: "slow_down", description: expect.stringContaining("10 s") });
    // The old interval is no longer enough ...
    now += INTERVAL * 1000;
    expect(await poll(deviceCode)).toMatchObject({
      error: "slow_down",
      description: expect.stringContaining("15 s"),
    });
    // ... the grown one is, and it stays grown.
    now += 15_000;
    expect(errorOf(await poll(deviceCode))).toBe("authorization_pending");
    now += 10_000;
    expect(errorOf(await poll(deviceCode))).toBe("slow_down");
  });

  it("keeps each device code's pace apart: one device's slow_down does not slow another of the same client", async (ctx) => {
    skipWithoutRedis(ctx);
    const hasty = await requested();
    const patient = await requested();
    expect(errorOf(await poll(hasty.deviceCode))).toBe("authorization_pending");
    expect(errorOf(await poll(patient.deviceCode))).toBe("authorization_pending");
    now += 1000;
    expect(await poll(hasty.deviceCode)).toMatchObject({
      error: "slow_down",
      description: expect.stringContaining("10 s"),
    });
    // The other device kept to the advertised interval: still the advertised interval for it.
    now += INTERVAL * 1000;
    expect(errorOf(await poll(patient.deviceCode))).toBe("authorization_pending");
    expect(errorOf(await poll(hasty.deviceCode))).toBe("slow_down");
    now += INTERVAL * 1000;
    expect(errorOf(await poll(patient.deviceCode))).toBe("authorization_pending");
  });

  it("answers expired_token after the codes' lifetime, approved or not, and the user code stops working", async (ctx) => {
    skipWithoutRedis(ctx);
    const waiting = await requested();
    const approved = await requested();
    await answer(approved.userCode, true);
    now += TTL * 1000;
    expect(errorOf(await poll(waiting.deviceCode))).toBe("expired_token");
    expect(errorOf(await poll(approved.deviceCode))).toBe("expired_token");
    expect(await devices.findByUserCode(waiting.userCode)).toBeUndefined();
  });

  it("answers access_denied after the person denied, to every later poll", async (ctx) => {
    skipWithoutRedis(ctx);
    const { deviceCode, userCode } = await requested();
    expect(errorOf(await poll(deviceCode))).toBe("authorization_pending");
    await answer(userCode, false);
    now += INTERVAL * 1000;
    expect(errorOf(await poll(deviceCode))).toBe("access_denied");
    now += INTERVAL * 1000;
    expect(errorOf(await poll(deviceCode))).toBe("access_denied");
    expect(await devices.findByUserCode(userCode)).toBeUndefined();
  });

  it("answers invalid_grant to another client presenting the device code, and leaves it to its own client", async (ctx) => {
    skipWithoutRedis(ctx);
    const { deviceCode, userCode } = await requested();
    await answer(userCode, true);
    expect(errorOf(await poll(deviceCode, OTHER))).toBe("invalid_grant");
    expect(errorOf(await poll(deviceCode))).toBe("tokens");
  });

  it("issues an access token for the approved resources and a refresh token, once; a second redemption ends the grant", async (ctx) => {
    skipWithoutRedis(ctx);
    const { deviceCode, userCode } = await requested();
    await answer(userCode, true);
    const issued = await poll(deviceCode);
    if (!("tokens" in issued)) throw new Error(`no tokens: ${JSON.stringify(issued)}`);
    const { tokens } = issued;
    expect(tokens).toMatchObject({
      token_type: "Bearer",
      scope: "notes:read",
      expires_in: config.tokens.access_ttl,
    });
    expect(tokens.refresh_token).toBeTruthy();
    const claims = decodeJwt(tokens.access_token);
    expect(claims).toMatchObject({
      iss: ISSUER,
      sub: "alice",
      aud: NOTES,
      client_id: DEVICE.client_id,
      auth_time: 1000,
    });
    const sid = claims.sid as string;
    expect(await as.grants.getGrant(sid)).toMatchObject({ client_id: DEVICE.client_id, resources: [NOTES] });
    expect(audit).toContainEqual(
      expect.objectContaining({ type: "token.issued", grant_type: DEVICE_CODE_GRANT, sid, user: "alice" }),
    );

    const again = await poll(deviceCode);
    expect(again).toMatchObject({
      error: "invalid_grant",
      description: expect.stringContaining("already used"),
    });
    expect(await as.grants.getGrant(sid)).toBeUndefined();
    expect(await as.parts.revocations.isGrantRevoked(sid)).toBe(true);
    expect(audit).toContainEqual({ type: "grant.revoked", sid, reason: "device-code-replay" });
  });

  it("gives no refresh token to a client not registered for the refresh_token grant", async (ctx) => {
    skipWithoutRedis(ctx);
    const { deviceCode, userCode } = await requested(NO_REFRESH);
    await answer(userCode, true);
    const issued = await poll(deviceCode, NO_REFRESH);
    if (!("tokens" in issued)) throw new Error(`no tokens: ${JSON.stringify(issued)}`);
    expect(issued.tokens.refresh_token).toBeUndefined();
  });

  it("answers invalid_target for a resource the device was not approved for, and keeps the code usable", async (ctx) => {
    skipWithoutRedis(ctx);
    const { deviceCode, userCode } = await requested();
    await answer(userCode, true);
    expect(errorOf(await poll(deviceCode, DEVICE, [FILES]))).toBe("invalid_target");
    const narrowed = await poll(deviceCode, DEVICE, [NOTES]);
    expect(errorOf(narrowed)).toBe("tokens");
  });

  it("gives tokens to exactly one of concurrent redemptions", async (ctx) => {
    skipWithoutRedis(ctx);
    const { deviceCode, userCode } = await requested();
    await answer(userCode, true);
    const answers = await Promise.all(Array.from({ length: 8 }, () => poll(deviceCode)));
    expect(answers.filter((a) => "tokens" in a)).toHaveLength(1);
    expect(answers.filter((a) => !("tokens" in a)).map(errorOf)).toEqual(Array(7).fill("invalid_grant"));
  });

  it("takes one answer per request: a second approval or a denial after it changes nothing", async (ctx) => {
    skipWithoutRedis(ctx);
    const { deviceCode, userCode } = await requested();
    // However it is typed: lower case, a space or nothing for the dash.
    expect(await devices.findByUserCode(userCode.replace("-", ""))).toBeDefined();
    expect(await devices.findByUserCode(` ${userCode.toLowerCase()} `)).toBeDefined();
    const found = await devices.findByUserCode(userCode.toLowerCase().replace("-", " "));
    if (!found) throw new Error("the user code was not found in lower case with a space");
    const [first, second] = await Promise.all([
      devices.decide(found, { approved: false, user: "mallory", at: now }),
      devices.decide(found, { approved: true, user: ALICE, auth_time: 1, at: now }),
    ]);
    expect([first, second].filter(Boolean)).toHaveLength(1);
    const outcome = errorOf(await poll(deviceCode));
    expect(outcome).toBe(first ? "access_denied" : "tokens");
  });
});
