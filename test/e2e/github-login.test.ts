/**
 * The whole flow with GitHub as the identity provider, through the GitHub emulator reached by
 * its base URLs (as GitHub Enterprise Server is), on both stores: register -> authorize ->
 * GitHub -> /callback -> consent -> code -> token -> refresh -> revoke. A user not on the
 * allowlist gets a page and no code; removing a user from the allowlist ends their refreshes.
 */
import { rmSync } from "node:fs";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { type GitHubEmulator, githubSettings, startGitHubEmulator } from "../support/github-emulator.js";
import {
  authorizeUrl,
  Browser,
  formField,
  formPost,
  pkcePair,
  REDIRECT_URI,
  type RegisteredClient,
  registerClient,
  tokenRequest,
} from "../support/oauth-client.js";
import { startRedis, type TestRedis } from "../support/redis.js";

const OCTOCAT = { id: 583231, login: "octocat", name: "The Octocat", email: "octocat@github.com" };
const MALLORY = { id: 666, login: "mallory", email: "mallory@example.com" };
const SERVICES = { notes: { url: "http://127.0.0.1:9/mcp", scopes: ["notes:read"] } };

type Outcome = { redirect: URL } | { page: { status: number; html: string; location: string | null } };

/**
 * Drives a browser from /authorize through every redirect (gateway and emulator alike),
 * allowing consent, until it is sent back to the client or stops on a page that is not consent.
 */
async function drive(gatewayUrl: string, browser: Browser, start: string): Promise<Outcome> {
  let res = await browser.get(start);
  for (let hops = 0; hops < 10; hops++) {
    const location = res.headers.get("location");
    if (res.status === 302 && location) {
      const next = new URL(location, res.url || gatewayUrl);
      if (`${next.origin}${next.pathname}` === REDIRECT_URI) return { redirect: next };
      res = await browser.get(next.toString());
      continue;
    }
    const html = await res.text();
    if (res.status === 200 && html.includes('action="/consent"')) {
      res = await browser.postForm(`${gatewayUrl}/consent`, {
        request: formField(html, "request"),
        csrf: formField(html, "csrf"),
        decision: "allow",
      });
      continue;
    }
    return { page: { status: res.status, html, location } };
  }
  throw new Error("too many redirects");
}

describe.each([
  { name: "sqlite", redis: false },
  { name: "redis", redis: true },
])("GitHub login on $name", ({ redis: useRedis }) => {
  let redis: TestRedis | undefined;
  let emulator: GitHubEmulator;
  let gw: RunningGateway;

  const tree = (allowed: string[]) => ({
    services: SERVICES,
    idp: {
      type: "github",
      github: githubSettings(emulator, { allowed_users: allowed }),
    },
  });

  beforeAll(async () => {
    if (useRedis) {
      redis = await startRedis();
      if (!redis) return;
    }
    emulator = await startGitHubEmulator({ user: OCTOCAT });
    // Case and spaces in the allowlist do not matter.
    gw = await startFullGateway(tree([" OctoCat ", "hubot"]), { redisUrl: redis?.url });
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
    // After the restart the gateway reuses a directory it did not create, so it leaves it.
    if (gw) rmSync(gw.dataDir, { recursive: true, force: true });
    await emulator?.stop();
    await redis?.stop();
  });

  async function authorize(client: RegisteredClient, state: string) {
    const { verifier, challenge } = pkcePair();
    const resource = `${gw.url}/notes/mcp`;
    const outcome = await drive(
      gw.url,
      new Browser(),
      authorizeUrl(gw.url, { client_id: client.client_id, code_challenge: challenge, state, resource }),
    );
    return { outcome, verifier, resource };
  }

  it("runs register -> authorize -> GitHub -> consent -> token -> refresh -> revoke", async (ctx) => {
    if (useRedis && !redis) ctx.skip();
    emulator.setUser(OCTOCAT);
    emulator.requests.length = 0;
    const client = await registerClient(gw.url, { token_endpoint_auth_method: "client_secret_basic" });
    const basic = { id: client.client_id, secret: client.client_secret as string };

    const { outcome, verifier, resource } = await authorize(client, "gh-state");
    if (!("redirect" in outcome))
      throw new Error(`stopped on a page: ${outcome.page.status} ${outcome.page.html.slice(0, 300)}`);
    expect(outcome.redirect.searchParams.get("state")).toBe("gh-state");
    expect(outcome.redirect.searchParams.get("iss")).toBe(gw.url);
    // The browser really went through GitHub's authorize page and the gateway asked GitHub who it was.
    expect(emulator.requests).toEqual(
      expect.arrayContaining(["/login/oauth/authorize", "/login/oauth/access_token", "/api/v3/user"]),
    );

    const tokens = await tokenRequest(
      gw.url,
      {
        grant_type: "authorization_code",
        code: outcome.redirect.searchParams.get("code") as string,
        code_verifier: verifier,
        redirect_uri: REDIRECT_URI,
      },
      basic,
    );
    expect(tokens.status).toBe(200);
    expect(decodeJwt(tokens.body.access_token as string)).toMatchObject({
      iss: gw.url,
      sub: String(OCTOCAT.id),
      aud: resource,
      preferred_username: "octocat",
      name: OCTOCAT.name,
      email: OCTOCAT.email,
      client_id: client.client_id,
    });

    const refreshed = await tokenRequest(
      gw.url,
      { grant_type: "refresh_token", refresh_token: tokens.body.refresh_token as string },
      basic,
    );
    expect(refreshed.status).toBe(200);
    const revoke = await formPost(
      `${gw.url}/revoke`,
      { token: refreshed.body.refresh_token as string },
      basic,
    );
    expect(revoke.status).toBe(200);
    const info = await formPost(
      `${gw.url}/introspect`,
      { token: refreshed.body.access_token as string },
      basic,
    );
    expect(info.body).toEqual({ active: false });
  });

  it("shows a 403 page and issues no code to a GitHub user who is not on the allowlist", async (ctx) => {
    if (useRedis && !redis) ctx.skip();
    emulator.setUser(MALLORY);
    try {
      const client = await registerClient(gw.url);
      const { outcome } = await authorize(client, "m");
      if (!("page" in outcome))
        throw new Error(`expected a page, was sent to ${outcome.redirect.toString()}`);
      expect(outcome.page.status).toBe(403);
      expect(outcome.page.location).toBeNull();
      expect(outcome.page.html).toContain("Access denied");
      expect(outcome.page.html).toContain("mallory");
      expect(outcome.page.html).not.toContain("code=");
    } finally {
      emulator.setUser(OCTOCAT);
    }
  });

  it("refuses the next refresh (invalid_grant) once the user is removed from the allowlist", async (ctx) => {
    if (useRedis && !redis) ctx.skip();
    emulator.setUser(OCTOCAT);
    const client = await registerClient(gw.url);
    const { outcome, verifier } = await authorize(client, "a");
    if (!("redirect" in outcome)) throw new Error(`stopped on a page: ${outcome.page.html.slice(0, 300)}`);
    const tokens = await tokenRequest(gw.url, {
      grant_type: "authorization_code",
      client_id: client.client_id,
      code: outcome.redirect.searchParams.get("code") as string,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
    });
    expect(tokens.status).toBe(200);
    const form = { grant_type: "refresh_token", client_id: client.client_id };
    const stillAllowed = await tokenRequest(gw.url, {
      ...form,
      refresh_token: tokens.body.refresh_token as string,
    });
    expect(stillAllowed.status).toBe(200);

    // Same data, same issuer, octocat no longer listed.
    const { port, dataDir } = gw;
    await gw.close();
    gw = await startFullGateway(tree(["hubot"]), { redisUrl: redis?.url, dataDir, port });
    const refused = await tokenRequest(gw.url, {
      ...form,
      refresh_token: stillAllowed.body.refresh_token as string,
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe("invalid_grant");
  });
});
