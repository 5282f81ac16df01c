/**
 * /verify as Traefik, Caddy and nginx call it, without a proxy in between. The test client is
 * on 127.0.0.1, which `gw` trusts as a proxy (so its forwarded headers are read when no
 * `?service=` names the service) and `direct` does not.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLOCK_TOLERANCE_S } from "../../src/tokens/verify.js";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { firstRefusal, raw } from "../support/mcp-http.js";

let gw: TestGateway;
let direct: TestGateway;
let verify: string;

const SERVICES = {
  echo: { url: "http://127.0.0.1:9/mcp" },
  team: { url: "http://127.0.0.1:9/mcp", allowed_users: ["bob"] },
};

beforeAll(async () => {
  gw = await startGateway({
    base_domain: "mcp.test",
    trust_proxy: "127.0.0.1",
    tokens: { revocation_cache: 1 },
    gateway: { allowed_origins: ["https://proxy.example:8443"] },
    services: SERVICES,
  });
  direct = await startGateway({ base_domain: "mcp.test", services: SERVICES });
  verify = `${gw.url}/verify`;
});

afterAll(async () => {
  await gw?.close();
  await direct?.close();
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

  it("no token, a browser's GET: the same 401 and challenge with the endpoint page; a client's keeps JSON", async () => {
    const html = "text/html,application/xhtml+xml,*/*;q=0.8";
    const page = await raw(verify, {
      headers: { "x-forwarded-uri": "/echo/mcp", "x-forwarded-method": "GET", accept: html },
    });
    expect(page.status).toBe(401);
    expect(page.headers["www-authenticate"]).toBe(`Bearer resource_metadata="${prm("echo")}"`);
    expect(page.headers["content-type"]).toMatch(/^text\/html/);
    expect(page.text).toContain("This is an MCP endpoint");
    for (const headers of [
      { "x-forwarded-uri": "/echo/mcp", "x-forwarded-method": "POST", accept: html },
      { "x-forwarded-uri": "/echo/mcp", "x-forwarded-method": "GET", accept: "text/event-stream" },
    ]) {
      const res = await raw(verify, { headers });
      expect(res.status).toBe(401);
      expect(res.headers["content-type"]).toMatch(/^application\/json/);
    }
  });

  it("valid token: 200 with all identity headers (empty email when the token has none)", async () => {
    const token = await gw.token("echo", {
      sub: "42",
      preferred_username: "alice",
      email: undefined,
      client_id: "c-1",
    });
    for (const [url, headers] of [
      [verify, { "x-forwarded-uri": "/echo/mcp?x=1" }],
      [`${verify}?service=echo`, {}],
    ] as const) {
      const res = await raw(url, { headers: { ...headers, authorization: `Bearer ${token}` } });
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

  it("preflights pass without a token; a lone method claim is no preflight; a foreign Origin is 403", async () => {
    const preflight = {
      "x-forwarded-method": "OPTIONS",
      origin: "https://proxy.example:8443",
      "access-control-request-method": "POST",
    };
    const pre = await raw(`${verify}?service=echo`, { headers: preflight });
    expect(pre.status).toBe(200);
    expect(pre.headers["x-user-id"]).toBeUndefined();
    // Without the browser's own preflight headers, "OPTIONS" is only a claim: the token decides.
    const claim = await raw(`${verify}?service=echo`, { headers: { "x-forwarded-method": "OPTIONS" } });
    expect(claim.status).toBe(401);

    const token = await gw.token("echo");
    const foreign = await raw(verify, {
      headers: {
        "x-forwarded-uri": "/echo/mcp",
        origin: "http://evil.example",
        authorization: `Bearer ${token}`,
      },
    });
    expect(foreign.status).toBe(403);
    // A configured origin is fine.
    const listed = await raw(`${verify}?service=echo`, {
      headers: { origin: "https://proxy.example:8443", authorization: `Bearer ${token}` },
    });
    expect(listed.status).toBe(200);
  });

  it("the allowed origin never comes from a forwarded host: a rebound name is 403", async () => {
    const token = await gw.token("echo");
    for (const target of [gw, direct]) {
      const res = await raw(`${target.url}/verify?service=echo`, {
        headers: {
          "x-forwarded-host": "rebound.example:8080",
          "x-forwarded-proto": "http",
          host: "rebound.example:8080",
          origin: "http://rebound.example:8080",
          authorization: `Bearer ${await target.token("echo")}`,
        },
      });
      expect({ url: target.url, status: res.status }).toEqual({ url: target.url, status: 403 });
    }
    expect(token).toBeTruthy();
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

  it("finds the service the same ways: ?service=, X-Forwarded-Host, X-Forwarded-Uri", async () => {
    const pathToken = await gw.token("echo", { preferred_username: "ada" });
    const hostToken = await gw.token("echo", { aud: "http://echo.mcp.test/mcp", preferred_username: "ada" });
    const cases: Array<[string, string, Record<string, string>]> = [
      [`${verify}?service=echo`, pathToken, {}],
      [`${verify}?other=1&service=echo`, pathToken, { "x-forwarded-uri": "/team/mcp" }],
      [verify, hostToken, { "x-forwarded-host": "echo.mcp.test", "x-forwarded-uri": "/mcp" }],
      [verify, pathToken, { "x-forwarded-uri": "/echo/mcp" }],
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
    const preflight = {
      "x-forwarded-method": "OPTIONS",
      origin: "https://proxy.example:8443",
      "access-control-request-method": "POST",
    };
    const pre = await raw(verify, { headers: { ...echo, ...bearer, ...preflight } });
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
    // A repeated ?service= names no one service: refused, not decided by the headers instead.
    const twice = await raw(`${verify}?service=team&service=nope`, { headers: { ...echo, ...bearer } });
    expect(twice.status).toBe(401);
    expect(twice.headers["x-user-id"]).toBeUndefined();
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

/**
 * What a request that does not name its service in the /verify URL may not do: be decided from
 * headers an untrusted peer sent, or from forwarded headers that disagree or that a proxy and
 * the gateway could read differently. Each case would open a service with a token for
 * another (or route a path the proxy normalises differently); each is refused with the
 * challenge, in both lanes: every case is sent twice after the token's verdict is cached.
 */
describe("/verify without ?service=: refused, never routed", () => {
  const twice = async (
    url: string,
    headers: Record<string, string | string[]>,
    error = "invalid_request",
  ) => {
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await raw(url, { headers: headers as Record<string, string> });
      statuses.push(res.status);
      if (res.status === 401) expect(res.headers["www-authenticate"]).toContain(`error="${error}"`);
      if (res.status !== 200) expect(res.headers["x-user-id"]).toBeUndefined();
    }
    return statuses;
  };

  it("forwarded headers from a peer that trust_proxy does not name are not read", async () => {
    const token = await direct.token("echo");
    const bearer = { authorization: `Bearer ${token}` };
    expect((await raw(`${direct.url}/verify?service=echo`, { headers: bearer })).status).toBe(200);
    const attempts: Array<Record<string, string>> = [
      { "x-forwarded-uri": "/echo/mcp" },
      { "x-original-uri": "/echo/mcp" },
      { "x-forwarded-host": "echo.mcp.test", "x-forwarded-uri": "/mcp" },
    ];
    for (const headers of attempts) {
      expect(await twice(`${direct.url}/verify`, { ...headers, ...bearer })).toEqual([401, 401]);
    }
  });

  it("only the X-Forwarded-* family counts, even from a trusted proxy", async () => {
    const token = await gw.token("echo");
    const bearer = { authorization: `Bearer ${token}` };
    await raw(`${verify}?service=echo`, { headers: bearer });
    expect(await twice(verify, { "x-original-uri": "/echo/mcp", ...bearer })).toEqual([401, 401]);
    expect(await twice(verify, { forwarded: 'host="echo.mcp.test"', ...bearer })).toEqual([401, 401]);
    expect(await twice(verify, { "x-forwarded-uri": "/echo/mcp", ...bearer })).toEqual([200, 200]);
  });

  it("dot segments, encoded dots and slashes, backslashes, empty segments", async () => {
    const token = await gw.token("echo", { preferred_username: "bob" });
    const bearer = { authorization: `Bearer ${token}` };
    await raw(`${verify}?service=echo`, { headers: bearer });
    for (const uri of [
      "/echo/../team/mcp",
      "/echo/%2e%2e/team/mcp",
      "/echo/%2E%2E/team/mcp",
      "/echo/.%2e/team/mcp",
      "/echo/%2F../team/mcp",
      "/echo/%5c../team/mcp",
      "/echo\\..\\team/mcp",
      "/echo/./mcp",
      "/echo//mcp",
    ]) {
      expect({ uri, statuses: await twice(verify, { "x-forwarded-uri": uri, ...bearer }) }).toEqual({
        uri,
        statuses: [401, 401],
      });
    }
  });

  it("two URIs, or a host naming one service and a URI another", async () => {
    const pathToken = await gw.token("echo");
    const hostToken = await gw.token("echo", { aud: "http://echo.mcp.test/mcp" });
    await raw(`${verify}?service=echo`, { headers: { authorization: `Bearer ${pathToken}` } });
    const cases: Array<[string, Record<string, string | string[]>]> = [
      [pathToken, { "x-forwarded-uri": "/echo/mcp", "x-original-uri": "/team/mcp" }],
      [pathToken, { "x-forwarded-uri": ["/echo/mcp", "/team/mcp"] }],
      [hostToken, { "x-forwarded-host": "echo.mcp.test", "x-forwarded-uri": "/team/mcp" }],
    ];
    for (const [token, headers] of cases) {
      await raw(verify, {
        headers: {
          "x-forwarded-host": "echo.mcp.test",
          "x-forwarded-uri": "/mcp",
          authorization: `Bearer ${token}`,
        },
      });
      const statuses = await twice(verify, { ...headers, authorization: `Bearer ${token}` });
      expect({ headers, statuses }).toEqual({ headers, statuses: [401, 401] });
    }
  });

  it("?service= decides alone: no forwarded header changes it", async () => {
    const token = await gw.token("echo");
    const bearer = { authorization: `Bearer ${token}` };
    const spoofs = {
      "x-forwarded-uri": "/team/mcp",
      "x-original-uri": "/team/mcp",
      "x-forwarded-host": "team.mcp.test",
      forwarded: 'host="team.mcp.test"',
    };
    for (let i = 0; i < 3; i++) {
      const res = await raw(`${verify}?service=echo`, { headers: { ...spoofs, ...bearer } });
      expect(res.status).toBe(200);
      expect(res.headers["x-user-id"]).toBe("user-1");
    }
    const named = { "x-forwarded-uri": "/echo/mcp", "x-forwarded-host": "echo.mcp.test" };
    expect(await twice(`${verify}?service=team`, { ...named, ...bearer }, "invalid_token")).toEqual([
      401, 401,
    ]);
  });
});
