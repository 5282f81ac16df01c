/**
 * The whole authorization server over real HTTP, on both stores: register -> authorize ->
 * login -> consent -> token -> refresh -> revoke -> introspect, then a restart that must lose
 * nothing.
 */
import { decodeJwt, decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalUsers } from "../../src/idp/local.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import {
  authorizeWithLocalLogin,
  Browser,
  formPost,
  pkcePair,
  REDIRECT_URI,
  registerClient,
  tokenRequest,
} from "../support/oauth-client.js";
import { startRedis, type TestRedis } from "../support/redis.js";

const SERVICES = { services: { notes: { url: "http://127.0.0.1:9/mcp", scopes: ["notes:read"] } } };
const LOGIN = { username: "alice", password: "correct horse battery" };

type StoreCase = { name: string; redis: boolean };

describe.each<StoreCase>([
  { name: "sqlite", redis: false },
  { name: "redis", redis: true },
])("full OAuth flow on $name", ({ redis: useRedis }) => {
  let redis: TestRedis | undefined;
  let gw: RunningGateway;

  beforeAll(async () => {
    if (useRedis) {
      redis = await startRedis({ persist: true });
      if (!redis) return;
    }
    gw = await startFullGateway(SERVICES, { redisUrl: redis?.url });
    await new LocalUsers(gw.store).add(LOGIN.username, LOGIN.password, "alice@example.com");
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
    await redis?.stop();
  });

  it("runs register -> authorize -> token -> refresh -> revoke -> introspect, and survives a restart", async (ctx) => {
    if (useRedis && !redis) ctx.skip();
    const base = gw.url;
    const resource = `${base}/notes/mcp`;

    // A confidential client, so it can introspect too.
    const client = await registerClient(base, { token_endpoint_auth_method: "client_secret_basic" });
    expect(client.client_secret).toBeTruthy();
    expect(client.registration_client_uri).toBe(`${base}/register/${client.client_id}`);
    const basic = { id: client.client_id, secret: client.client_secret as string };

    const { verifier, challenge } = pkcePair();
    const back = await authorizeWithLocalLogin(
      base,
      new Browser(),
      { client_id: client.client_id, code_challenge: challenge, state: "xyz", resource },
      LOGIN,
    );
    expect(`${back.origin}${back.pathname}`).toBe(REDIRECT_URI);
    expect(back.searchParams.get("state")).toBe("xyz");
    expect(back.searchParams.get("iss")).toBe(base);
    const code = back.searchParams.get("code") as string;

    const tokens = await tokenRequest(
      base,
      {
        grant_type: "authorization_code",
        code,
        code_verifier: verifier,
        redirect_uri: REDIRECT_URI,
        resource,
      },
      basic,
    );
    expect(tokens.status).toBe(200);
    expect(tokens.headers.get("cache-control")).toBe("no-store");
    expect(tokens.body).toMatchObject({ token_type: "Bearer", expires_in: 3600, scope: "notes:read" });
    const access = tokens.body.access_token as string;
    expect(decodeProtectedHeader(access)).toMatchObject({ typ: "at+jwt", alg: "ES256" });
    expect(decodeJwt(access)).toMatchObject({
      iss: base,
      sub: "alice",
      aud: resource,
      client_id: client.client_id,
      scope: "notes:read",
      preferred_username: "alice",
      email: "alice@example.com",
    });

    // The signature checks out against the published JWKS.
    const jwks = (await (await fetch(`${base}/jwks`)).json()) as { keys: Array<{ kid: string }> };
    expect(jwks.keys.map((k) => k.kid)).toContain(decodeProtectedHeader(access).kid);

    const refreshed = await tokenRequest(
      base,
      { grant_type: "refresh_token", refresh_token: tokens.body.refresh_token as string },
      basic,
    );
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.refresh_token).not.toBe(tokens.body.refresh_token);
    const access2 = refreshed.body.access_token as string;

    let info = await formPost(`${base}/introspect`, { token: access2 }, basic);
    expect(info.body).toMatchObject({
      active: true,
      client_id: client.client_id,
      username: "alice",
      sub: "alice",
    });

    // Restart on the same data: clients, tokens and keys are all still there.
    const port = gw.port;
    const dataDir = gw.dataDir;
    await gw.close();
    if (redis) await redis.restart();
    gw = await startFullGateway(SERVICES, { redisUrl: redis?.url, dataDir, port });
    info = await formPost(`${base}/introspect`, { token: access2 }, basic);
    expect(info.body.active).toBe(true);
    const afterRestart = await tokenRequest(
      base,
      { grant_type: "refresh_token", refresh_token: refreshed.body.refresh_token as string },
      basic,
    );
    expect(afterRestart.status).toBe(200);

    // Revoking the refresh token ends the grant: access tokens from it become inactive.
    const revoke = await formPost(
      `${base}/revoke`,
      { token: afterRestart.body.refresh_token as string },
      basic,
    );
    expect(revoke.status).toBe(200);
    info = await formPost(`${base}/introspect`, { token: afterRestart.body.access_token as string }, basic);
    expect(info.body).toEqual({ active: false });
    info = await formPost(`${base}/introspect`, { token: afterRestart.body.refresh_token as string }, basic);
    expect(info.body).toEqual({ active: false });
    const again = await tokenRequest(
      base,
      { grant_type: "refresh_token", refresh_token: afterRestart.body.refresh_token as string },
      basic,
    );
    expect(again.status).toBe(400);
    expect(again.body.error).toBe("invalid_grant");
  });

  it("remembers consent per user and client: a second authorization skips login and consent", async (ctx) => {
    if (useRedis && !redis) ctx.skip();
    const base = gw.url;
    const client = await registerClient(base);
    const browser = new Browser();
    const first = await authorizeWithLocalLogin(
      base,
      browser,
      { client_id: client.client_id, code_challenge: pkcePair().challenge },
      LOGIN,
    );
    expect(first.searchParams.get("code")).toBeTruthy();
    // Same browser, same client: straight back with a code.
    const res = await browser.get(
      `${base}/authorize?response_type=code&client_id=${client.client_id}&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&code_challenge=${pkcePair().challenge}&code_challenge_method=S256`,
    );
    expect(res.status).toBe(302);
    expect(new URL(res.headers.get("location") as string).searchParams.get("code")).toBeTruthy();
    // Another client, same browser: logged in already, but consent is asked again.
    const other = await registerClient(base, { client_name: "Other app" });
    const res2 = await browser.get(
      `${base}/authorize?response_type=code&client_id=${other.client_id}&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&code_challenge=${pkcePair().challenge}&code_challenge_method=S256`,
    );
    expect(res2.status).toBe(200);
    const html = await res2.text();
    expect(html).toContain("Other app");
    expect(html).toContain('action="/consent"');
  });
});
