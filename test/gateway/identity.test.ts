/**
 * Configurable parts of the identity hand-off: custom identity header names (and that a client
 * cannot set them), header-safe encoding, and gateway-wide tokens when the config allows them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headerSafe, upstreamRequestHeaders } from "../../src/gateway/headers.js";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { postInitialize } from "../support/mcp-http.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";

let upstream: TestUpstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway({
    gateway: {
      accept_gateway_audience: true,
      identity_headers: { user_id: "X-Remote-User", user_name: "Remote-Name" },
    },
    services: { echo: { url: upstream.url } },
  });
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

describe("identity headers", () => {
  it("uses the configured names and drops client-sent ones", async () => {
    const token = await gw.token("echo", { sub: "u-1", preferred_username: "Zoë\r\nX-Evil: 1" });
    const res = await postInitialize(`${gw.url}/echo/mcp`, {
      authorization: `Bearer ${token}`,
      "x-remote-user": "spoofed",
      "remote-name": "spoofed",
      "x-user-id": "spoofed",
    });
    expect(res.status).toBe(200);
    const seen = upstream.requests.at(-1)?.headers ?? {};
    expect(seen["x-remote-user"]).toBe("u-1");
    expect(seen["remote-name"]).toBe("Zo%C3%AB%0D%0AX-Evil: 1");
    expect(seen["x-evil"]).toBeUndefined();
    expect(seen["x-user-id"]).toBeUndefined();
    expect(seen["x-user-email"]).toBe("alice@example.com");
  });

  it("a gateway-wide token opens any service when accept_gateway_audience is on", async () => {
    const token = await gw.token("echo", { aud: [gw.config.public_url] });
    expect((await postInitialize(`${gw.url}/echo/mcp`, { authorization: `Bearer ${token}` })).status).toBe(
      200,
    );
  });
});

describe("header filtering", () => {
  it("removes hop-by-hop, Connection-listed, credentials, identity and forwarding headers", () => {
    const out = upstreamRequestHeaders(
      {
        connection: "keep-alive, x-secret-hop",
        "x-secret-hop": "1",
        "keep-alive": "timeout=5",
        "transfer-encoding": "chunked",
        host: "gateway",
        authorization: "Bearer t",
        cookie: "a=b",
        origin: "http://gateway",
        "x-user-role": "admin",
        "x-auth-request-user": "admin",
        "x-forwarded-for": "1.2.3.4",
        forwarded: "for=1.2.3.4",
        "content-type": "application/json",
        "mcp-session-id": "s",
        "mcp-param-x": "y",
      },
      { "X-User-Id": "u", "X-User-Email": "" },
      new Set(["x-user-id"]),
      { for: "127.0.0.1", proto: "http", host: "gateway" },
    );
    expect(out).toEqual({
      "content-type": "application/json",
      "mcp-session-id": "s",
      "mcp-param-x": "y",
      "x-forwarded-for": "127.0.0.1",
      "x-forwarded-proto": "http",
      "x-forwarded-host": "gateway",
      "x-user-id": "u",
    });
  });

  it("headerSafe keeps printable ASCII and encodes the rest", () => {
    expect(headerSafe("alice@example.com")).toBe("alice@example.com");
    expect(headerSafe("50%")).toBe("50%25");
    expect(headerSafe("a\nb")).toBe("a%0Ab");
  });
});
