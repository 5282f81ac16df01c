/**
 * POST /token refusals over real HTTP, on both stores: each case asserts the exact status and
 * OAuth error code, and for replays and reuse, that what was issued before is revoked.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { REDIRECT_URI, registerClient, tokenRequest } from "../support/oauth-client.js";
import { startRedis, type TestRedis } from "../support/redis.js";
import {
  addLocalUser,
  addResourceServers,
  basicOf,
  expectFamilyEnded,
  INTROSPECTION,
  isActive,
  obtainCode,
  obtainTokens,
  rawPost,
  redeem,
  refresh,
  SERVICES,
  STORES,
  sleep,
} from "./helpers.js";
import { SEALING } from "./rotation-scenarios.js";

const CONFIDENTIAL = { token_endpoint_auth_method: "client_secret_basic" };

describe.each(STORES)("token endpoint refusals on $name", ({ redis: useRedis }) => {
  let redis: TestRedis | undefined;
  /** Default lifetimes: refresh reuse grace 10 s; a sealing secret, so the window serves the same successor. */
  let gw: RunningGateway;
  /** No reuse grace: any second use of a rotated refresh token is theft. */
  let strict: RunningGateway;
  /** Codes live one second. */
  let shortCode: RunningGateway;

  beforeAll(async () => {
    if (useRedis) {
      redis = await startRedis();
      if (!redis) return;
    }
    const redisUrl = redis?.url;
    [gw, strict, shortCode] = await Promise.all([
      startFullGateway({ ...SERVICES, ...INTROSPECTION, ...SEALING }, { redisUrl }),
      startFullGateway({ ...SERVICES, ...INTROSPECTION, tokens: { refresh_reuse_grace: 0 } }, { redisUrl }),
      startFullGateway({ ...SERVICES, ...INTROSPECTION, tokens: { code_ttl: 1 } }, { redisUrl }),
    ]);
    await Promise.all([gw, strict, shortCode].map(addLocalUser));
    await Promise.all([gw, strict, shortCode].map(addResourceServers));
  });
  afterAll(async () => {
    await Promise.all([gw, strict, shortCode].map((g) => g?.close({ wipe: true })));
    await redis?.stop();
  });

  /** Whether the gateway still considers `token` live (introspection by a resource server). */
  const active = isActive;

  const skipWithoutRedis = (ctx: { skip: () => void }) => {
    if (useRedis && !redis) ctx.skip();
  };

  describe("authorization_code", () => {
    it("refuses a wrong verifier, a missing verifier and a different redirect_uri with invalid_grant / invalid_request", async (ctx) => {
      skipWithoutRedis(ctx);
      const client = await registerClient(gw.url);
      const wrong = await redeem(gw, client, { ...(await obtainCode(gw, client)), verifier: "x".repeat(43) });
      expect(wrong.status).toBe(400);
      expect(wrong.body.error).toBe("invalid_grant");
      expect(wrong.headers.get("cache-control")).toBe("no-store");

      const missing = await tokenRequest(gw.url, {
        grant_type: "authorization_code",
        client_id: client.client_id,
        code: (await obtainCode(gw, client)).code,
        redirect_uri: REDIRECT_URI,
      });
      expect(missing.status).toBe(400);
      expect(missing.body.error).toBe("invalid_request");

      const other = await redeem(gw, client, await obtainCode(gw, client), {
        redirect_uri: "http://127.0.0.1:9999/other",
      });
      expect(other.status).toBe(400);
      expect(other.body.error).toBe("invalid_grant");
    });

    it("answers a replayed code with invalid_grant and revokes the tokens it produced", async (ctx) => {
      skipWithoutRedis(ctx);
      const client = await registerClient(gw.url, CONFIDENTIAL);
      const code = await obtainCode(gw, client);
      const first = await redeem(gw, client, code);
      expect(first.status).toBe(200);
      const access = first.body.access_token as string;
      const refreshToken = first.body.refresh_token as string;
      expect(await active(gw, access)).toBe(true);

      const replay = await redeem(gw, client, code);
      expect(replay.status).toBe(400);
      expect(replay.body.error).toBe("invalid_grant");

      expect(await active(gw, access)).toBe(false);
      expect(await active(gw, refreshToken)).toBe(false);
      const afterReplay = await refresh(gw, client, refreshToken);
      expect(afterReplay.status).toBe(400);
      expect(afterReplay.body.error).toBe("invalid_grant");
    });

    it("refuses a code presented by another client", async (ctx) => {
      skipWithoutRedis(ctx);
      const owner = await registerClient(gw.url);
      const thief = await registerClient(gw.url);
      const res = await redeem(gw, thief, await obtainCode(gw, owner));
      expect(res.status).toBe(400);
      expect(res.body.error).toBe("invalid_grant");
    });

    it("refuses an expired code", async (ctx) => {
      skipWithoutRedis(ctx);
      const client = await registerClient(shortCode.url);
      const code = await obtainCode(shortCode, client);
      await sleep(2_100);
      const res = await redeem(shortCode, client, code);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe("invalid_grant");
    });

    it("refuses a resource the code was not authorized for with invalid_target", async (ctx) => {
      skipWithoutRedis(ctx);
      const client = await registerClient(gw.url);
      const code = await obtainCode(gw, client, { resource: `${gw.url}/notes/mcp` });
      const res = await redeem(gw, client, code, { resource: `${gw.url}/files/mcp` });
      expect(res.status).toBe(400);
      expect(res.body.error).toBe("invalid_target");
    });

    it("lets exactly one of 20 parallel redemptions of one code succeed", async (ctx) => {
      skipWithoutRedis(ctx);
      const client = await registerClient(gw.url);
      const code = await obtainCode(gw, client);
      const results = await Promise.all(Array.from({ length: 20 }, () => redeem(gw, client, code)));
      expect(results.filter((r) => r.status === 200)).toHaveLength(1);
      const refused = results.filter((r) => r.status !== 200);
      expect(refused.map((r) => `${r.status} ${r.body.error}`)).toEqual(Array(19).fill("400 invalid_grant"));
    });
  });

  describe("refresh_token", () => {
    it("revokes the whole family when a rotated refresh token is reused after the grace window", async (ctx) => {
      skipWithoutRedis(ctx);
      const client = await registerClient(strict.url, CONFIDENTIAL);
      const first = await obtainTokens(strict, client);
      const second = await refresh(strict, client, first.refresh_token);
      expect(second.status).toBe(200);
      const newest = second.body as Record<string, string>;
      expect(await active(strict, newest.access_token as string)).toBe(true);

      await sleep(20);
      const reuse = await refresh(strict, client, first.refresh_token);
      expect(reuse.status).toBe(400);
      expect(reuse.body.error).toBe("invalid_grant");

      // The newest tokens of the family die with it.
      expect(await active(strict, newest.access_token as string)).toBe(false);
      expect(await active(strict, newest.refresh_token as string)).toBe(false);
      const next = await refresh(strict, client, newest.refresh_token as string);
      expect(next.status).toBe(400);
      expect(next.body.error).toBe("invalid_grant");
    });

    it("answers a repeat inside the grace window with the same successor, never a second chain", async (ctx) => {
      skipWithoutRedis(ctx);
      const client = await registerClient(gw.url);
      const first = await obtainTokens(gw, client);
      const second = await refresh(gw, client, first.refresh_token);
      expect(second.status).toBe(200);
      const again = await refresh(gw, client, first.refresh_token);
      expect(again.status).toBe(200);
      expect(again.body.refresh_token).toBe(second.body.refresh_token);
      expect(again.body.access_token).not.toBe(second.body.access_token);
      // Nothing was revoked: both access tokens work, and the one successor refreshes.
      expect(await active(gw, second.body.access_token as string)).toBe(true);
      expect(await active(gw, again.body.access_token as string)).toBe(true);
      const next = await refresh(gw, client, second.body.refresh_token as string);
      expect(next.status).toBe(200);
      // Its successor used, the first token is reuse: the grant ends.
      const late = await refresh(gw, client, first.refresh_token);
      expect(`${late.status} ${late.body.error}`).toBe("400 invalid_grant");
      expect(await active(gw, next.body.access_token as string)).toBe(false);
    });

    it("with no grace, treats 20 parallel refreshes of one token as reuse: the family ends", async (ctx) => {
      skipWithoutRedis(ctx);
      const client = await registerClient(strict.url);
      const { refresh_token: token } = await obtainTokens(strict, client);
      const results = await Promise.all(Array.from({ length: 20 }, () => refresh(strict, client, token)));
      await expectFamilyEnded(results, (successor) => refresh(strict, client, successor));
    });

    it("serves all of 20 parallel refreshes of one token inside the grace window (two tabs refreshing at once)", async (ctx) => {
      skipWithoutRedis(ctx);
      const client = await registerClient(gw.url);
      const { refresh_token: token } = await obtainTokens(gw, client);
      const results = await Promise.all(Array.from({ length: 20 }, () => refresh(gw, client, token)));
      expect(results.map((r) => `${r.status} ${r.body.error ?? ""}`)).toEqual(Array(20).fill("200 "));
      // One successor for all of them, and it refreshes.
      expect(new Set(results.map((r) => r.body.refresh_token)).size).toBe(1);
      const next = await refresh(gw, client, results[19]?.body.refresh_token as string);
      expect(next.status).toBe(200);
    });

    it("allows narrowing the scope and refuses widening it with invalid_scope", async (ctx) => {
      skipWithoutRedis(ctx);
      const client = await registerClient(gw.url);
      const notes = `${gw.url}/notes/mcp`;
      const tokens = await obtainTokens(gw, client, { scope: "notes:read notes:write", resource: notes });
      expect(tokens.scope).toBe("notes:read notes:write");

      const narrow = await refresh(gw, client, tokens.refresh_token, { scope: "notes:read" });
      expect(narrow.status).toBe(200);
      expect(narrow.body.scope).toBe("notes:read");

      // The rotated token keeps the grant's scope: asking for both again is not widening.
      const both = await refresh(gw, client, narrow.body.refresh_token as string, {
        scope: "notes:read notes:write",
      });
      expect(both.status).toBe(200);
      expect(both.body.scope).toBe("notes:read notes:write");

      const wide = await refresh(gw, client, both.body.refresh_token as string, {
        scope: "notes:read files:read",
      });
      expect(wide.status).toBe(400);
      expect(wide.body.error).toBe("invalid_scope");
    });

    it("refuses a widening from a narrower grant and a resource outside the grant, without spending the token", async (ctx) => {
      skipWithoutRedis(ctx);
      const client = await registerClient(gw.url);
      const tokens = await obtainTokens(gw, client, { scope: "notes:read", resource: `${gw.url}/notes/mcp` });
      const wide = await refresh(gw, client, tokens.refresh_token, { scope: "notes:read notes:write" });
      expect(wide.status).toBe(400);
      expect(wide.body.error).toBe("invalid_scope");
      const target = await refresh(gw, client, tokens.refresh_token, { resource: `${gw.url}/files/mcp` });
      expect(target.status).toBe(400);
      expect(target.body.error).toBe("invalid_target");
      // Refusals spend nothing: the same refresh token still works.
      const ok = await refresh(gw, client, tokens.refresh_token);
      expect(ok.status).toBe(200);
      expect(ok.body.scope).toBe("notes:read");
    });

    it("refuses a refresh token presented by another client", async (ctx) => {
      skipWithoutRedis(ctx);
      const owner = await registerClient(gw.url);
      const thief = await registerClient(gw.url);
      const { refresh_token: token } = await obtainTokens(gw, owner);
      const res = await refresh(gw, thief, token);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe("invalid_grant");
    });
  });
});

describe("token endpoint request checks", () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startFullGateway(SERVICES);
    await addLocalUser(gw);
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
  });

  it("answers a wrong client secret with 401 invalid_client, with a Basic challenge when Basic was used", async () => {
    const client = await registerClient(gw.url, CONFIDENTIAL);
    const code = await obtainCode(gw, client);
    const form = {
      grant_type: "authorization_code",
      code: code.code,
      code_verifier: code.verifier,
      redirect_uri: REDIRECT_URI,
    };

    const basic = await tokenRequest(gw.url, form, { id: client.client_id, secret: "wrong" });
    expect(basic.status).toBe(401);
    expect(basic.body.error).toBe("invalid_client");
    expect(basic.headers.get("www-authenticate")).toMatch(/^Basic /);

    const post = await tokenRequest(gw.url, { ...form, client_id: client.client_id, client_secret: "wrong" });
    expect(post.status).toBe(401);
    expect(post.body.error).toBe("invalid_client");

    const unknown = await tokenRequest(gw.url, { ...form, client_id: "no-such-client" });
    expect(unknown.status).toBe(401);
    expect(unknown.body.error).toBe("invalid_client");

    // A failed authentication did not spend the code: the right secret still redeems it.
    const right = await tokenRequest(gw.url, form, basicOf(client));
    expect(right.status).toBe(200);
  });

  it("answers a JSON body with 400 invalid_request", async () => {
    const res = await rawPost(
      `${gw.url}/token`,
      JSON.stringify({ grant_type: "refresh_token", refresh_token: "x" }),
      {
        "content-type": "application/json",
      },
    );
    expect(res.status).toBe(400);
    expect(res.body.error).toBe("invalid_request");
  });

  it("answers an oversized body with 413 and OAuth JSON", async () => {
    const body = `grant_type=refresh_token&refresh_token=${"a".repeat(70 * 1024)}`;
    const res = await rawPost(`${gw.url}/token`, body, {
      "content-type": "application/x-www-form-urlencoded",
    });
    expect(res.status).toBe(413);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.body.error).toBe("invalid_request");
  });

  it("answers an unknown or missing grant type with unsupported_grant_type / invalid_request", async () => {
    const client = await registerClient(gw.url);
    for (const grant of [
      "password",
      "client_credentials",
      "urn:ietf:params:oauth:grant-type:device_code_x",
    ]) {
      const res = await tokenRequest(gw.url, { grant_type: grant, client_id: client.client_id });
      expect(res.status, grant).toBe(400);
      expect(res.body.error, grant).toBe("unsupported_grant_type");
    }
    const none = await tokenRequest(gw.url, { client_id: client.client_id });
    expect(none.status).toBe(400);
    expect(none.body.error).toBe("invalid_request");
  });

  it("refuses a repeated parameter with invalid_request", async () => {
    const client = await registerClient(gw.url);
    const res = await tokenRequest(gw.url, {
      grant_type: "refresh_token",
      client_id: client.client_id,
      refresh_token: ["a", "b"],
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe("invalid_request");
  });
});
