/**
 * Discovery and browser rules: RFC 9728 metadata (path and host routing), Origin validation,
 * CORS preflight, and host routing of the MCP endpoint itself.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { postInitialize, raw } from "../support/mcp-http.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";

let upstream: TestUpstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway({
    base_domain: "mcp.test",
    gateway: { allowed_origins: ["http://inspector.local:6274"] },
    services: {
      echo: { url: upstream.url, title: "Echo server" },
      scoped: { url: upstream.url, scopes: ["tools"] },
    },
  });
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

describe("protected resource metadata", () => {
  it("path routing document", async () => {
    const res = await raw(`${gw.url}/.well-known/oauth-protected-resource/echo/mcp`);
    expect(res.status).toBe(200);
    expect(res.headers["access-control-allow-origin"]).toBe("*");
    expect(JSON.parse(res.text)).toEqual({
      resource: `${gw.url}/echo/mcp`,
      authorization_servers: [gw.url],
      bearer_methods_supported: ["header"],
      resource_name: "Echo server",
    });
  });

  it("scopes_supported when the service has scopes", async () => {
    const res = await raw(`${gw.url}/.well-known/oauth-protected-resource/scoped/mcp`);
    expect(JSON.parse(res.text).scopes_supported).toEqual(["tools"]);
  });

  it("host routing: root and path-inserted documents on the service host", async () => {
    for (const path of [
      "/.well-known/oauth-protected-resource",
      "/.well-known/oauth-protected-resource/mcp",
    ]) {
      const res = await raw(`${gw.url}${path}`, { headers: { host: "echo.mcp.test" } });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.text).resource).toBe("http://echo.mcp.test/mcp");
    }
  });

  it("404 for an unknown service or a host that is no service's", async () => {
    expect((await raw(`${gw.url}/.well-known/oauth-protected-resource/nope/mcp`)).status).toBe(404);
    const res = await raw(`${gw.url}/.well-known/oauth-protected-resource`, {
      headers: { host: "mcp.test" },
    });
    expect(res.status).toBe(404);
    expect(JSON.parse(res.text).jsonrpc).toBe("2.0");
  });

  it("the challenge's resource_metadata follows the routing the client used", async () => {
    const res = await postInitialize(`${gw.url}/mcp`, { host: "echo.mcp.test" });
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toBe(
      'Bearer resource_metadata="http://echo.mcp.test/.well-known/oauth-protected-resource/mcp"',
    );
  });
});

describe("host routing", () => {
  it("{name}.{base_domain}/mcp reaches the service; a token for its host URL works", async () => {
    const token = await gw.token("echo", { aud: "http://echo.mcp.test/mcp" });
    const res = await postInitialize(`${gw.url}/mcp`, {
      host: "echo.mcp.test",
      authorization: `Bearer ${token}`,
    });
    expect(res.status).toBe(200);
    expect(res.headers["mcp-session-id"]).toBeTruthy();
  });

  it("a path-routing token is also valid on the host (same service, both resource URLs)", async () => {
    const token = await gw.token("echo");
    const res = await postInitialize(`${gw.url}/mcp`, {
      host: "echo.mcp.test:443",
      authorization: `Bearer ${token}`,
    });
    expect(res.status).toBe(200);
  });

  it("unknown host: 404", async () => {
    const res = await postInitialize(`${gw.url}/mcp`, { host: "nope.mcp.test" });
    expect(res.status).toBe(404);
  });
});

describe("Origin and CORS", () => {
  const inspector = "http://inspector.local:6274";

  it("a foreign Origin is refused with 403 before any token check", async () => {
    const token = await gw.token("echo");
    const res = await postInitialize(`${gw.url}/echo/mcp`, {
      origin: "http://evil.example",
      authorization: `Bearer ${token}`,
    });
    expect(res.status).toBe(403);
    expect(JSON.parse(res.text)).toEqual({
      jsonrpc: "2.0",
      error: { code: -32000, message: "Origin not allowed" },
      id: null,
    });
  });

  it("a malformed Origin is refused", async () => {
    const res = await postInitialize(`${gw.url}/echo/mcp`, { origin: "null" });
    expect(res.status).toBe(403);
  });

  it("the gateway's own origin, a service host origin and configured origins are allowed", async () => {
    const token = await gw.token("echo");
    for (const origin of [gw.url, inspector]) {
      const res = await postInitialize(`${gw.url}/echo/mcp`, { origin, authorization: `Bearer ${token}` });
      expect(res.status).toBe(200);
      expect(res.headers["access-control-allow-origin"]).toBe(origin);
      expect(res.headers["access-control-expose-headers"]).toBe("Mcp-Session-Id, WWW-Authenticate");
    }
    const own = await postInitialize(`${gw.url}/mcp`, {
      host: "echo.mcp.test",
      origin: "http://echo.mcp.test",
      authorization: `Bearer ${token}`,
    });
    expect(own.status).toBe(200);
    // Another service's host is not this service's origin.
    const other = await postInitialize(`${gw.url}/echo/mcp`, { origin: "http://scoped.mcp.test" });
    expect(other.status).toBe(403);
  });

  it("a 401 to an allowed browser origin still exposes WWW-Authenticate", async () => {
    const res = await postInitialize(`${gw.url}/echo/mcp`, { origin: inspector });
    expect(res.status).toBe(401);
    expect(res.headers["access-control-allow-origin"]).toBe(inspector);
    expect(res.headers["access-control-expose-headers"]).toContain("WWW-Authenticate");
  });

  it("CORS preflight for an allowed origin", async () => {
    const res = await raw(`${gw.url}/echo/mcp`, {
      method: "OPTIONS",
      headers: {
        origin: inspector,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, mcp-session-id, mcp-param-region",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers["access-control-allow-origin"]).toBe(inspector);
    expect(res.headers["access-control-allow-methods"]).toBe("GET, POST, DELETE, OPTIONS");
    const allowed = String(res.headers["access-control-allow-headers"]).toLowerCase().split(", ");
    for (const h of [
      "authorization",
      "content-type",
      "mcp-session-id",
      "mcp-protocol-version",
      "last-event-id",
      "mcp-param-region",
    ]) {
      expect(allowed).toContain(h);
    }
    expect(res.headers["access-control-expose-headers"]).toBe("Mcp-Session-Id, WWW-Authenticate");
  });

  it("CORS preflight for a foreign origin: 403, no CORS headers", async () => {
    const res = await raw(`${gw.url}/echo/mcp`, {
      method: "OPTIONS",
      headers: { origin: "http://evil.example", "access-control-request-method": "POST" },
    });
    expect(res.status).toBe(403);
    expect(res.headers["access-control-allow-origin"]).toBeUndefined();
  });
});
