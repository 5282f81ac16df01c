/**
 * `serve` configured with nothing but the Python gateway's .env variables, and each one's effect
 * on the running gateway: BASE_DOMAIN (the issuer auth.{BASE_DOMAIN} and host routing),
 * GITHUB_CLIENT_ID/SECRET and ALLOWED_GITHUB_USERS (a GitHub login, through the GitHub emulator,
 * of an allowed and of a refused user), REDIS_URL/REDIS_PASSWORD (a real redis-server with
 * requirepass holds the state), CLIENT_LIFETIME, ACCESS_TOKEN_LIFETIME, REFRESH_TOKEN_LIFETIME
 * (the lifetimes clients see and Redis keeps), and MCP_*_ENABLED (which services there are).
 *
 * The Python gateway only ever talked to github.com, so it had no variables for GitHub's base
 * URLs; the emulator is reached as GitHub Enterprise is, through `idp.github.web_url`/`api_url`,
 * given here as MCP_GATEWAY_IDP__GITHUB__WEB_URL/API_URL. GATEWAY_JWT_SECRET, the Python
 * gateway's shared signing secret, is the secret every instance seals the signing keys with
 * here; a service the Python gateway had and this one does not ship is a warning, not a stop.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { decodeJwt } from "jose";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkBinary } from "../support/binaries.js";
import { type GitHubEmulator, startGitHubEmulator } from "../support/github-emulator.js";
import { INITIALIZE, MCP_HEADERS } from "../support/mcp-http.js";
import { authorizeUrl, formField, pkcePair, REDIRECT_URI } from "../support/oauth-client.js";
import { redisAvailable, startRedis, type TestRedis } from "../support/redis.js";
import { BUILT, type ServeProcess, startServe } from "./serve-process.js";

const BASE_DOMAIN = "gw.example.test";
const AUTH_HOST = `auth.${BASE_DOMAIN}`;
const ISSUER = `https://${AUTH_HOST}`;
const REDIS_PASSWORD = "redis pass: with spaces & symbols";
const LIFETIMES = { client: 5400, access: 900, refresh: 7200 };
const OCTOCAT = { id: 583231, login: "octocat", name: "The Octocat", email: "octocat@github.com" };
const MALLORY = { id: 666, login: "mallory", email: "mallory@example.com" };

const tmux = checkBinary("/usr/bin/tmux");
const canRun = (BUILT && redisAvailable() && tmux.available) || process.env.CI === "true";

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/**
 * A browser on a machine where `*.{BASE_DOMAIN}` resolves to the gateway (as DNS and a TLS
 * proxy would make it): https URLs on those hosts go to the gateway's loopback port with their
 * own Host header. Cookies are kept by name; other URLs (the emulator) are fetched as they are.
 */
class DomainBrowser {
  private readonly cookies = new Map<string, string>();
  constructor(private readonly gatewayPort: number) {}

  async send(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
    const target = new URL(url);
    const headers: Record<string, string> = { ...init.headers };
    let address = target.toString();
    if (target.hostname.endsWith(`.${BASE_DOMAIN}`)) {
      headers.host = target.host;
      address = `http://127.0.0.1:${this.gatewayPort}${target.pathname}${target.search}`;
    }
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const res = await request(address, { method: (init.method ?? "GET") as "GET", headers, body: init.body });
    const setCookie = res.headers["set-cookie"];
    for (const line of [setCookie ?? []].flat()) {
      const [pair] = line.split(";");
      const eq = pair?.indexOf("=") ?? -1;
      if (pair && eq > 0) this.cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() } satisfies Answer;
  }

  /** A form posted from one of the site's own pages, as a current browser sends it. */
  postForm(url: string, form: Record<string, string>) {
    return this.send(url, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        origin: new URL(url).origin,
        "sec-fetch-site": "same-origin",
      },
      body: new URLSearchParams(form).toString(),
    });
  }
}

type Outcome = { redirect: URL } | { page: Answer };

/** From /authorize through GitHub (the emulator) and consent, to the client's redirect or a page. */
async function drive(browser: DomainBrowser, start: string): Promise<Outcome> {
  let url = start;
  let res = await browser.send(url);
  for (let hops = 0; hops < 12; hops++) {
    const location = res.headers.location;
    if (res.status >= 300 && res.status < 400 && typeof location === "string") {
      const next = new URL(location, url);
      if (`${next.origin}${next.pathname}` === REDIRECT_URI) return { redirect: next };
      url = next.toString();
      res = await browser.send(url);
      continue;
    }
    if (res.status === 200 && res.text.includes('action="/consent"')) {
      url = `${ISSUER}/consent`;
      res = await browser.postForm(url, {
        request: formField(res.text, "request"),
        csrf: formField(res.text, "csrf"),
        decision: "allow",
      });
      continue;
    }
    return { page: res };
  }
  throw new Error("too many redirects");
}

describe.skipIf(!canRun)("serve with only the Python gateway's variables", { timeout: 120_000 }, () => {
  let redis: TestRedis;
  let emulator: GitHubEmulator;
  let gateway: ServeProcess;
  let inspect: Redis;
  let dir: string;

  /** A request to the gateway as `https://{host}{path}` would reach it. */
  const at = (host: string, path: string, init: Parameters<DomainBrowser["send"]>[1] = {}) =>
    new DomainBrowser(gateway.port).send(`https://${host}${path}`, init);

  beforeAll(async () => {
    redis = (await startRedis({ password: REDIS_PASSWORD })) as TestRedis;
    emulator = await startGitHubEmulator({ user: OCTOCAT, callbackUrl: `${ISSUER}/callback` });
    dir = mkdtempSync(join(tmpdir(), "mcpgw-python-env-"));
    gateway = await startServe({
      cwd: dir,
      env: {
        BASE_DOMAIN,
        GITHUB_CLIENT_ID: emulator.clientId,
        GITHUB_CLIENT_SECRET: emulator.clientSecret,
        ALLOWED_GITHUB_USERS: "hubot, OctoCat",
        // The password apart from the URL, as the Python gateway's .env has it.
        REDIS_URL: `redis://127.0.0.1:${redis.port}`,
        REDIS_PASSWORD,
        CLIENT_LIFETIME: String(LIFETIMES.client),
        ACCESS_TOKEN_LIFETIME: String(LIFETIMES.access),
        REFRESH_TOKEN_LIFETIME: String(LIFETIMES.refresh),
        MCP_TMUX_ENABLED: "true",
        MCP_FILESYSTEM_ENABLED: "false",
        // The Python gateway's name for the sequential-thinking server.
        MCP_SEQUENTIALTHINKING_ENABLED: "false",
        MCP_TIME_ENABLED: "true",
        MCP_GATEWAY_IDP__GITHUB__WEB_URL: emulator.webUrl,
        MCP_GATEWAY_IDP__GITHUB__API_URL: emulator.apiUrl,
        // The Python gateway's shared secret; required with Redis (serve refuses without one).
        GATEWAY_JWT_SECRET: "python-env test secret, shared by every instance",
        // A Python gateway service this one does not ship: a warning, and ignored.
        MCP_ECHO_STATEFUL_ENABLED: "true",
      },
    });
    inspect = new Redis({ host: "127.0.0.1", port: redis.port, password: REDIS_PASSWORD, lazyConnect: true });
    await inspect.connect();
  });

  afterAll(async () => {
    await gateway?.stop();
    inspect?.disconnect();
    await emulator?.stop();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("BASE_DOMAIN: the issuer is https://auth.{BASE_DOMAIN}", async () => {
    expect(gateway.stderr()).toContain(`issuer:   ${ISSUER}`);
    const meta = await at(AUTH_HOST, "/.well-known/oauth-authorization-server");
    expect(meta.status).toBe(200);
    expect(JSON.parse(meta.text)).toMatchObject({
      issuer: ISSUER,
      authorization_endpoint: `${ISSUER}/authorize`,
      token_endpoint: `${ISSUER}/token`,
    });
  });

  it("BASE_DOMAIN: host routing is on, {service}.{BASE_DOMAIN}/mcp is the service's resource", async () => {
    const res = await at(`time.${BASE_DOMAIN}`, "/mcp", {
      method: "POST",
      headers: MCP_HEADERS,
      body: JSON.stringify(INITIALIZE),
    });
    expect(res.status).toBe(401);
    expect(String(res.headers["www-authenticate"])).toContain(
      `resource_metadata="https://time.${BASE_DOMAIN}/.well-known/oauth-protected-resource/mcp"`,
    );
    const prm = await at(`time.${BASE_DOMAIN}`, "/.well-known/oauth-protected-resource/mcp");
    expect(JSON.parse(prm.text)).toMatchObject({
      resource: `https://time.${BASE_DOMAIN}/mcp`,
      authorization_servers: [ISSUER],
    });
  });

  it("MCP_*_ENABLED: tmux on, filesystem and sequential-thinking off, the rest as built in", async () => {
    expect(gateway.services).toEqual(
      expect.arrayContaining(["tmux", "time", "everything", "memory", "fetch"]),
    );
    expect(gateway.services).not.toContain("filesystem");
    expect(gateway.services).not.toContain("sequential-thinking");
    // A Python gateway service not shipped here: named in one warning, and the gateway started.
    expect(gateway.stderr()).toContain('warning: MCP_ECHO_STATEFUL_ENABLED: no service "echo-stateful"');
    expect(gateway.services).not.toContain("echo-stateful");
    expect(
      (await at(`filesystem.${BASE_DOMAIN}`, "/mcp", { method: "POST", headers: MCP_HEADERS })).status,
    ).toBe(404);
  });

  it("REDIS_URL + REDIS_PASSWORD: the state is in the password-protected Redis, not in a local file", async () => {
    expect(gateway.stderr()).toMatch(/^store: {4}redis /m);
    expect(existsSync(join(dir, "data", "gateway.db"))).toBe(false);
    const keys = await inspect.keys("mcpgw:keys:*");
    expect(keys.length).toBeGreaterThan(0);
    // Sealed: a dump of this Redis holds no key that can sign tokens.
    for (const key of keys) {
      const stored = JSON.parse((await inspect.get(key)) as string) as Record<string, unknown>;
      expect(stored.private_sealed, key).toBeDefined();
      expect(stored.private_jwk, key).toBeUndefined();
    }
  });

  it("GitHub login of an allowed user; CLIENT_LIFETIME, ACCESS_TOKEN_LIFETIME and REFRESH_TOKEN_LIFETIME as configured", async () => {
    emulator.setUser(OCTOCAT);
    const reg = await at(AUTH_HOST, "/register", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        client_name: "python-env test",
        redirect_uris: [REDIRECT_URI],
        token_endpoint_auth_method: "none",
      }),
    });
    expect(reg.status).toBe(201);
    const client = JSON.parse(reg.text) as {
      client_id: string;
      client_id_issued_at: number;
      client_secret_expires_at: number;
    };
    // CLIENT_LIFETIME: the registration's expiry, and how long Redis keeps the client.
    expect(client.client_secret_expires_at - client.client_id_issued_at).toBe(LIFETIMES.client);
    const clientTtl = await inspect.pttl(`mcpgw:clients:${client.client_id}`);
    expect(clientTtl).toBeGreaterThan((LIFETIMES.client - 60) * 1000);
    expect(clientTtl).toBeLessThanOrEqual(LIFETIMES.client * 1000);

    const resource = `https://tmux.${BASE_DOMAIN}/mcp`;
    const { verifier, challenge } = pkcePair();
    const browser = new DomainBrowser(gateway.port);
    const outcome = await drive(
      browser,
      authorizeUrl(ISSUER, { client_id: client.client_id, code_challenge: challenge, state: "s1", resource }),
    );
    if (!("redirect" in outcome))
      throw new Error(`stopped on a page: ${outcome.page.status} ${outcome.page.text.slice(0, 300)}`);
    expect(outcome.redirect.searchParams.get("iss")).toBe(ISSUER);
    expect(emulator.requests).toEqual(expect.arrayContaining(["/login/oauth/access_token", "/api/v3/user"]));

    const tokenRes = await at(AUTH_HOST, "/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        client_id: client.client_id,
        code: outcome.redirect.searchParams.get("code") as string,
        code_verifier: verifier,
        redirect_uri: REDIRECT_URI,
      }).toString(),
    });
    expect(tokenRes.status, tokenRes.text).toBe(200);
    const tokens = JSON.parse(tokenRes.text) as {
      access_token: string;
      refresh_token: string;
      expires_in: number;
    };
    // ACCESS_TOKEN_LIFETIME: what the client is told and what the token says.
    expect(tokens.expires_in).toBe(LIFETIMES.access);
    const claims = decodeJwt(tokens.access_token);
    expect((claims.exp as number) - (claims.iat as number)).toBe(LIFETIMES.access);
    expect(claims).toMatchObject({ iss: ISSUER, aud: resource, preferred_username: "octocat" });
    // REFRESH_TOKEN_LIFETIME: how long the refresh token (and its grant) live in Redis.
    // The refresh token's family, keyed by its grant id (STORAGE.md, refresh tokens).
    const refreshTtl = await inspect.pttl(`mcpgw:refresh_family:{${claims.sid as string}}`);
    expect(refreshTtl).toBeGreaterThan((LIFETIMES.refresh - 60) * 1000);
    expect(refreshTtl).toBeLessThanOrEqual(LIFETIMES.refresh * 1000);
    const grantTtl = await inspect.pttl(`mcpgw:grants:${claims.sid as string}`);
    expect(grantTtl).toBeGreaterThan((LIFETIMES.refresh - 60) * 1000);
    expect(grantTtl).toBeLessThanOrEqual(LIFETIMES.refresh * 1000);

    // The token opens the service at its own host (host routing), tmux enabled by MCP_TMUX_ENABLED.
    const opened = await at(`tmux.${BASE_DOMAIN}`, "/mcp", {
      method: "POST",
      headers: { ...MCP_HEADERS, authorization: `Bearer ${tokens.access_token}` },
      body: JSON.stringify(INITIALIZE),
    });
    expect(opened.status, opened.text).toBe(200);
    expect(opened.text).toContain("mcp-tmux");
  });

  it("ALLOWED_GITHUB_USERS: a GitHub user not on it gets a 403 page and no code", async () => {
    emulator.setUser(MALLORY);
    try {
      const reg = await at(AUTH_HOST, "/register", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: "none" }),
      });
      const { client_id } = JSON.parse(reg.text) as { client_id: string };
      const { challenge } = pkcePair();
      const outcome = await drive(
        new DomainBrowser(gateway.port),
        authorizeUrl(ISSUER, {
          client_id,
          code_challenge: challenge,
          resource: `https://time.${BASE_DOMAIN}/mcp`,
        }),
      );
      if (!("page" in outcome)) throw new Error(`expected a page, was sent to ${outcome.redirect}`);
      expect(outcome.page.status).toBe(403);
      expect(outcome.page.text).toContain("mallory");
      expect(outcome.page.text).not.toContain("code=");
    } finally {
      emulator.setUser(OCTOCAT);
    }
  });
});
