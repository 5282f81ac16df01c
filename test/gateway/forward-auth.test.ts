/** /verify as Traefik, Caddy and nginx call it, without a proxy in between. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { raw } from "../support/mcp-http.js";

let gw: TestGateway;
let verify: string;

beforeAll(async () => {
  gw = await startGateway({
    base_domain: "mcp.test",
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
