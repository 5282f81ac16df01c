/** /verify as Traefik, Caddy and nginx call it, without a proxy in between. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLOCK_TOLERANCE_S } from "../../src/tokens/verify.js";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { firstRefusal, raw } from "../support/mcp-http.js";

let gw: TestGateway;
let verify: string;

beforeAll(async () => {
  gw = await startGateway({
    base_domain: "mcp.test",
    tokens: { revocation_cache: 1 },
    services: {
      echo: { url: "http://127.0.0.1:9/mcp" },
      team: { url: "http://127.0.0.1:9/mcp", allowed_users: ["bob"] },
    },
  });
  verify = `${gw.url}/verify`;
});

afterAll(async () => {
  await gw?.close();
});

const prm = (name: string) => `${gw.url}/.well-known/oauth-protected-resource/${name}/mcp`;

describe("/verify", () => {
  it("no token: 401 with the service's challenge", async () => {
    const res = await raw(verify, {
      headers: { "x-forwarded-uri": "/echo/mcp", "x-forwarded-method": "POST" },
    });
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toBe(`Bearer resource_metadata="${prm("echo")}"`);
  });

  it("valid token: 200 with all identity headers (empty email when the token has none)", async () => {
    const token = await gw.token("echo", {
      sub: "42",
      preferred_username: "alice",
      email: undefined,
      client_id: "c-1",
    });
    for (const uriHeader of ["x-forwarded-uri", "x-original-uri"]) {
      const res = await raw(verify, {
        headers: { [uriHeader]: "/echo/mcp?x=1", authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(200);
      expect(res.headers["x-user-id"]).toBe("42");
      expect(res.headers["x-user-name"]).toBe("alice");
      expect(res.headers["x-user-email"]).toBe("");
      expect(res.headers["x-auth-client-id"]).toBe("c-1");
    }
  });

  it("POST and HEAD work too", async () => {
    const token = await gw.token("echo");
    const headers = { "x-forwarded-uri": "/echo/mcp", authorization: `Bearer ${token}` };
    expect((await raw(verify, { method: "POST", headers, body: "{}" })).status).toBe(200);
    expect((await raw(verify, { method: "HEAD", headers })).status).toBe(200);
    expect((await raw(verify, { method: "HEAD", headers: { "x-forwarded-uri": "/echo/mcp" } })).status).toBe(
      401,
    );
  });

  it("host routing from X-Forwarded-Host; ?service= wins over both", async () => {
    const hostToken = await gw.token("echo", { aud: "http://echo.mcp.test/mcp" });
    const byHost = await raw(verify, {
      headers: {
        "x-forwarded-host": "echo.mcp.test",
        "x-forwarded-uri": "/mcp",
        authorization: `Bearer ${hostToken}`,
      },
    });
    expect(byHost.status).toBe(200);
    const noToken = await raw(verify, {
      headers: { "x-forwarded-host": "echo.mcp.test", "x-forwarded-uri": "/mcp" },
    });
    expect(noToken.headers["www-authenticate"]).toBe(
      'Bearer resource_metadata="http://echo.mcp.test/.well-known/oauth-protected-resource/mcp"',
    );
    const explicit = await raw(`${verify}?service=team`, { headers: { "x-forwarded-uri": "/echo/mcp" } });
    expect(explicit.headers["www-authenticate"]).toBe(`Bearer resource_metadata="${prm("team")}"`);
  });

  it("no matching service: 401 invalid_request (nginx would turn a 404 into a 500)", async () => {
    const res = await raw(verify, { headers: { "x-forwarded-uri": "/nope/mcp" } });
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toBe(
      'Bearer error="invalid_request", error_description="No service matches this request"',
    );
    expect((await raw(verify)).status).toBe(401);
  });

  it("a token for another service: 401", async () => {
    const token = await gw.token("team", { preferred_username: "bob" });
    const res = await raw(verify, {
      headers: { "x-forwarded-uri": "/echo/mcp", authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toContain('error="invalid_token"');
    expect(res.headers["x-user-id"]).toBeUndefined();
  });

  it("a user outside the policy: 403", async () => {
    const token = await gw.token("team", { preferred_username: "mallory" });
    const res = await raw(verify, {
      headers: { "x-forwarded-uri": "/team/mcp", authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(403);
    expect(res.headers["www-authenticate"]).toContain('error="access_denied"');
  });

  it("preflights pass without a token; a foreign Origin does not", async () => {
    const pre = await raw(verify, {
      headers: { "x-forwarded-uri": "/echo/mcp", "x-forwarded-method": "OPTIONS" },
    });
    expect(pre.status).toBe(200);
    const token = await gw.token("echo");
    const foreign = await raw(verify, {
      headers: {
        "x-forwarded-uri": "/echo/mcp",
        origin: "http://evil.example",
        authorization: `Bearer ${token}`,
      },
    });
    expect(foreign.status).toBe(403);
    // The origin of the host the proxy serves is the page's own origin, so it is fine.
    const own = await raw(verify, {
      headers: {
        "x-forwarded-uri": "/echo/mcp",
        "x-forwarded-host": "proxy.example:8443",
        "x-forwarded-proto": "https",
        origin: "https://proxy.example:8443",
        authorization: `Bearer ${token}`,
      },
    });
    expect(own.status).toBe(200);
  });
});

/**
 * A token seen once has its verdict cached, and repeats are answered ahead of fastify (see
 * test/ops/request-log.test.ts for which lane answered). Each case warms the cache with one
 * good request first, then checks that nothing the full route would refuse gets through.
 */
describe("/verify with the token's verdict cached", () => {
  const echo = { "x-forwarded-uri": "/echo/mcp" };
  const warm = async (token: string, headers: Record<string, string> = echo) => {
    const res = await raw(verify, { headers: { ...headers, authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    return res;
  };

  it("answers repeats with the same status and headers as the first time", async () => {
    const token = await gw.token("echo", { sub: "7", preferred_username: "ada", client_id: "c-7" });
    const first = await warm(token);
    for (const method of ["GET", "POST"]) {
      const again = await raw(verify, { method, headers: { ...echo, authorization: `Bearer ${token}` } });
      const { date: _d1, ...expected } = first.headers;
      const { date: _d2, ...got } = again.headers;
      expect({ method, status: again.status, headers: got }).toEqual({
        method,
        status: 200,
        headers: expected,
      });
    }
    // (undici closes the connection after a HEAD, so its Connection header differs.)
    const head = await raw(verify, {
      method: "HEAD",
      headers: { ...echo, authorization: `Bearer ${token}` },
    });
    expect(head.status).toBe(200);
    expect(head.headers["x-user-name"]).toBe("ada");
    expect(first.headers["x-user-id"]).toBe("7");
    expect(first.headers["cache-control"]).toBe("no-store");
  });

  it("finds the service the same ways: ?service=, X-Forwarded-Host, X-Original-URI", async () => {
    const pathToken = await gw.token("echo", { preferred_username: "ada" });
    const hostToken = await gw.token("echo", { aud: "http://echo.mcp.test/mcp", preferred_username: "ada" });
    const cases: Array<[string, string, Record<string, string>]> = [
      [`${verify}?service=echo`, pathToken, {}],
      [`${verify}?other=1&service=echo`, pathToken, { "x-forwarded-uri": "/team/mcp" }],
      [verify, hostToken, { "x-forwarded-host": "echo.mcp.test", "x-forwarded-uri": "/mcp" }],
      [verify, pathToken, { "x-original-uri": "/echo/mcp" }],
    ];
    for (const [url, token, headers] of cases) {
      for (let i = 0; i < 2; i++) {
        const res = await raw(url, { headers: { ...headers, authorization: `Bearer ${token}` } });
        expect({ url, headers, i, status: res.status, user: res.headers["x-user-name"] }).toEqual({
          url,
          headers,
          i,
          status: 200,
          user: "ada",
        });
      }
    }
  });

  it("still refuses another service, a user outside the policy, and a foreign Origin", async () => {
    const token = await gw.token("echo", { preferred_username: "mallory" });
    await warm(token);
    const other = await raw(verify, {
      headers: { "x-forwarded-uri": "/team/mcp", authorization: `Bearer ${token}` },
    });
    expect(other.status).toBe(401);
    expect(other.headers["www-authenticate"]).toContain('error="invalid_token"');
    const named = await raw(`${verify}?service=team`, {
      headers: { ...echo, authorization: `Bearer ${token}` },
    });
    expect(named.status).toBe(401);
    expect(named.headers["x-user-id"]).toBeUndefined();

    const teamToken = await gw.token("team", { preferred_username: "mallory" });
    for (let i = 0; i < 2; i++) {
      const res = await raw(verify, {
        headers: { "x-forwarded-uri": "/team/mcp", authorization: `Bearer ${teamToken}` },
      });
      expect(res.status).toBe(403);
    }

    const foreign = await raw(verify, {
      headers: { ...echo, origin: "http://evil.example", authorization: `Bearer ${token}` },
    });
    expect(foreign.status).toBe(403);
    expect(foreign.headers["x-user-id"]).toBeUndefined();
  });

  it("a preflight gets no identity; a body or an odd path goes the full way", async () => {
    const token = await gw.token("echo");
    await warm(token);
    const bearer = { authorization: `Bearer ${token}` };
    const pre = await raw(verify, { headers: { ...echo, ...bearer, "x-forwarded-method": "OPTIONS" } });
    expect(pre.status).toBe(200);
    expect(pre.headers["x-user-id"]).toBeUndefined();
    const withBody = await raw(verify, {
      method: "POST",
      headers: { ...echo, ...bearer },
      body: "x".repeat(10),
    });
    expect(withBody.status).toBe(200);
    expect(withBody.headers["x-user-id"]).toBe("user-1");
    expect((await raw(`${verify}/`, { headers: { ...echo, ...bearer } })).status).toBe(404);
    expect((await raw(`${verify}x`, { headers: { ...echo, ...bearer } })).status).toBe(404);
    // A repeated ?service= is not a service name: the forwarded headers decide, as on the route.
    const twice = await raw(`${verify}?service=team&service=nope`, { headers: { ...echo, ...bearer } });
    expect(twice.status).toBe(200);
  });

  it("a revoked token is refused within the revocation cache bound", async () => {
    const token = await gw.token("echo", { sid: "verify-grant" });
    await warm(token);
    await gw.revocations.revokeGrant("verify-grant");
    const send = () => raw(verify, { headers: { ...echo, authorization: `Bearer ${token}` } });
    const res = await firstRefusal(send, gw.config.tokens.revocation_cache * 1000 + 300);
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toContain("revoked");
  });

  it("a token is refused once it expires, though its verdict was cached", async () => {
    // Past its exp already, but inside the clock tolerance for one to two more seconds.
    const token = await gw.token("echo", {}, { ttl: 2 - CLOCK_TOLERANCE_S });
    await warm(token);
    const send = () => raw(verify, { headers: { ...echo, authorization: `Bearer ${token}` } });
    const res = await firstRefusal(send, 2500);
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toContain('error_description="The access token expired"');
  });
});
