/**
 * The audit trail and the log as an operator reads them: every grant, refusal and revocation
 * is a typed event, and no token, code, secret or password ever appears in any log line.
 * Also the brute-force brake on the password login.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalUsers } from "../../src/idp/local.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { INITIALIZE, MCP_HEADERS } from "../support/mcp-http.js";
import {
  authorizeUrl,
  authorizeWithLocalLogin,
  Browser,
  formField,
  formPost,
  pkcePair,
  REDIRECT_URI,
  registerClient,
  tokenRequest,
} from "../support/oauth-client.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { roomInBrakeWindow } from "../support/wait.js";

const LOGIN = { username: "grace", password: "audit trail password" };

describe("audit events and log hygiene", () => {
  const lines: string[] = [];
  let gw: RunningGateway;
  let upstream: TestUpstream;
  const secrets: string[] = [LOGIN.password];

  beforeAll(async () => {
    upstream = await startUpstream();
    gw = await startFullGateway(
      { log_level: "info", tokens: { refresh_reuse_grace: 0 }, services: { notes: { url: upstream.url } } },
      { logLines: lines },
    );
    await new LocalUsers(gw.store).add(LOGIN.username, LOGIN.password);
  });
  afterAll(async () => {
    await gw.close({ wipe: true });
    await upstream.close();
  });

  const events = () =>
    lines
      .map((l) => JSON.parse(l) as { audit?: Record<string, unknown> })
      .filter((l) => l.audit)
      .map((l) => l.audit as Record<string, unknown>);

  it("records the whole life of a grant, and nothing secret", async () => {
    const resource = `${gw.url}/notes/mcp`;
    const client = await registerClient(gw.url, { token_endpoint_auth_method: "client_secret_post" });
    secrets.push(client.client_secret as string, client.registration_access_token);

    // A failed login, then a good one.
    const browser = new Browser();
    const { verifier, challenge } = pkcePair();
    let res = await browser.get(
      authorizeUrl(gw.url, { client_id: client.client_id, code_challenge: challenge, resource }),
    );
    res = await browser.get(new URL(res.headers.get("location") as string, gw.url).toString());
    const html = await res.text();
    await browser.postForm(`${gw.url}/login`, {
      request: formField(html, "request"),
      csrf: formField(html, "csrf"),
      username: LOGIN.username,
      password: "not the password",
    });
    const back = await authorizeWithLocalLogin(
      gw.url,
      browser,
      { client_id: client.client_id, code_challenge: challenge, resource },
      LOGIN,
    );
    const code = back.searchParams.get("code") as string;
    secrets.push(code);
    const creds = { client_id: client.client_id, client_secret: client.client_secret as string };
    const tokens = await tokenRequest(gw.url, {
      grant_type: "authorization_code",
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
      ...creds,
    });
    const access = tokens.body.access_token as string;
    const refresh = tokens.body.refresh_token as string;
    secrets.push(access, refresh);

    // The token opens the service; a wrong one is refused and audited.
    const call = (token: string) =>
      fetch(resource, {
        method: "POST",
        headers: { ...MCP_HEADERS, authorization: `Bearer ${token}` },
        body: JSON.stringify(INITIALIZE),
      });
    expect((await call(access)).status).toBe(200);
    expect((await call(`${access.slice(0, -4)}AAAA`)).status).toBe(401);

    // Rotation, then reuse of the rotated token: the grant ends.
    const rotated = await tokenRequest(gw.url, {
      grant_type: "refresh_token",
      refresh_token: refresh,
      ...creds,
    });
    secrets.push(rotated.body.access_token as string, rotated.body.refresh_token as string);
    const reused = await tokenRequest(gw.url, {
      grant_type: "refresh_token",
      refresh_token: refresh,
      ...creds,
    });
    expect(reused.body.error).toBe("invalid_grant");
    await formPost(`${gw.url}/revoke`, { token: rotated.body.access_token as string, ...creds });

    const types = events().map((e) => e.type);
    for (const type of [
      "client.registered",
      "login.failed",
      "login.succeeded",
      "consent.granted",
      "token.issued",
      "access.refused",
      "token.refused",
      "grant.revoked",
      "token.revoked",
    ]) {
      expect(types, type).toContain(type);
    }
    const issued = events().filter((e) => e.type === "token.issued");
    expect(issued.map((e) => e.grant_type)).toEqual(["authorization_code", "refresh_token"]);
    expect(issued[0]).toMatchObject({
      user: LOGIN.username,
      client_id: client.client_id,
      resources: [resource],
    });
    expect(events().find((e) => e.type === "grant.revoked")).toMatchObject({ reason: "refresh-reuse" });

    // Not one log line carries a secret.
    const log = lines.join("\n");
    for (const secret of secrets) expect(log.includes(secret), "a secret reached the log").toBe(false);
    expect(log).not.toMatch(/code=|refresh_token=|Bearer ey/);
  });

  it("slows down password guessing: after 10 failures for a name, even the right password waits", {
    timeout: 60_000,
  }, async () => {
    // The 11 attempts counted in one window of the default 15 minutes.
    await roomInBrakeWindow(gw.config.rate_limits.login.per_user.window, 20);
    await new LocalUsers(gw.store).add("henry", "the right password");
    const client = await registerClient(gw.url);
    const browser = new Browser();
    const start = await browser.get(
      authorizeUrl(gw.url, { client_id: client.client_id, code_challenge: pkcePair().challenge }),
    );
    const page = await (
      await browser.get(new URL(start.headers.get("location") as string, gw.url).toString())
    ).text();
    const form = { request: formField(page, "request"), csrf: formField(page, "csrf"), username: "henry" };
    for (let i = 0; i < 10; i++) {
      const wrong = await browser.postForm(`${gw.url}/login`, { ...form, password: `guess ${i}` });
      expect(wrong.status).toBe(401);
    }
    const blocked = await browser.postForm(`${gw.url}/login`, { ...form, password: "the right password" });
    expect(blocked.status).toBe(429);
    expect(await blocked.text()).toContain("Too many failed sign-ins");
  });
});
