/**
 * The proxy shortcut (src/gateway/proxy-shortcut.ts) answers a token's requests once its
 * verdict is cached, ahead of fastify. Whichever lane a request takes, the answer is the same:
 * each check here sends the same request twice with one token (the first takes fastify's
 * route and caches the verdict, the second the shortcut) and compares. Real gateway, real SDK
 * upstream, raw HTTP.
 */
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { INITIALIZE, MCP_HEADERS, type RawResponse, raw } from "../support/mcp-http.js";
import { freePort, startUpstream, type TestUpstream } from "../support/upstream.js";

const ORIGIN = "https://app.example";
let gw: TestGateway;
let upstream: TestUpstream;

beforeAll(async () => {
  upstream = await startUpstream();
  const nothing = await freePort();
  gw = await startGateway({
    gateway: { allowed_origins: [ORIGIN] },
    services: {
      echo: { url: upstream.url },
      other: { url: upstream.url },
      down: { url: `http://127.0.0.1:${nothing}/mcp` },
    },
  });
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

/** An initialize: the one request the stateful test upstream answers without a session. */
const initialize = (id: number) => JSON.stringify({ ...INITIALIZE, id });

function post(service: string, token: string, headers: Record<string, string> = {}, id = 7) {
  return raw(`${gw.url}/${service}/mcp`, {
    method: "POST",
    headers: {
      ...MCP_HEADERS,
      "mcp-protocol-version": "2025-06-18",
      authorization: `Bearer ${token}`,
      ...headers,
    },
    body: initialize(id),
  });
}

/** The JSON-RPC message of a JSON body or of a one-event SSE body. */
function messageOf(text: string): unknown {
  const data = text.startsWith("{")
    ? text
    : text
        .split("\n")
        .find((l) => l.startsWith("data: "))
        ?.slice(6);
  return JSON.parse(data ?? "null");
}

/** What must not differ between the lanes: status, the headers the client relies on, the body. */
function shape(res: RawResponse) {
  return {
    status: res.status,
    type: res.headers["content-type"],
    cors: res.headers["access-control-allow-origin"],
    expose: res.headers["access-control-expose-headers"],
    challenge: res.headers["www-authenticate"],
    cookie: res.headers["set-cookie"],
    body: messageOf(res.text),
  };
}

/** The same request twice: the route's answer, then the shortcut's. */
async function bothLanes(send: () => Promise<RawResponse>) {
  const first = await send();
  const second = await send();
  return { first: shape(first), second: shape(second) };
}

describe("the proxy shortcut answers as the route does", () => {
  it("an MCP request with a cached token: same answer, same identity upstream, no client credential", async () => {
    const token = await gw.token("echo", { sub: "u-1", preferred_username: "ada" });
    const seen = upstream.requests.length;
    const spoof = { "x-user-id": "someone-else", x_auth_client_id: "evil", cookie: "a=b" };
    const { first, second } = await bothLanes(() => post("echo", token, spoof));
    expect(first.status).toBe(200);
    expect(second).toEqual(first);
    const arrived = upstream.requests.slice(seen).filter((r) => r.method === "POST");
    expect(arrived).toHaveLength(2);
    for (const r of arrived) {
      expect(r.headers.authorization).toBeUndefined();
      expect(r.headers.cookie).toBeUndefined();
      expect(r.headers.x_auth_client_id).toBeUndefined();
      expect(r.headers["x-user-id"]).toBe("u-1");
      expect(r.headers["x-user-name"]).toBe("ada");
      expect(r.headers["x-forwarded-proto"]).toBe("http");
    }
  });

  it("an allowed Origin gets CORS headers; another Origin 403 although the token is cached", async () => {
    const token = await gw.token("echo");
    const allowed = await bothLanes(() => post("echo", token, { origin: ORIGIN }));
    expect(allowed.first.cors).toBe(ORIGIN);
    expect(allowed.second).toEqual(allowed.first);
    const refused = await bothLanes(() => post("echo", token, { origin: "https://evil.example" }));
    expect(refused.first.status).toBe(403);
    expect(refused.second).toEqual(refused.first);
  });

  it("a cached token for one service does not open another", async () => {
    const token = await gw.token("other");
    expect((await post("other", token)).status).toBe(200);
    const { first, second } = await bothLanes(() => post("echo", token));
    expect(first.status).toBe(401);
    expect(second).toEqual(first);
  });

  it("an upstream that is down: a 502 JSON-RPC error answering the request's id, on both lanes", async () => {
    const token = await gw.token("down");
    const { first, second } = await bothLanes(() => post("down", token, {}, 41));
    expect(first.status).toBe(502);
    expect(first.body).toMatchObject({ jsonrpc: "2.0", id: 41, error: { code: -32000 } });
    expect(second).toEqual(first);
  });

  it("a declared body over gateway.max_body is refused with 413 with a cached token too", async () => {
    const token = await gw.token("echo");
    expect((await post("echo", token)).status).toBe(200);
    const big = "x".repeat(gw.config.gateway.max_body + 1);
    const res = await raw(`${gw.url}/echo/mcp`, {
      method: "POST",
      headers: { ...MCP_HEADERS, authorization: `Bearer ${token}` },
      body: big,
    });
    expect(res.status).toBe(413);
  });

  it("requests the shortcut answers are counted under the route pattern", async () => {
    const registry = new Registry();
    gw.requests.metrics.register(registry);
    const count = async () => {
      const text = await registry.getSingleMetricAsString("mcpgw_http_requests_total");
      const line = text
        .split("\n")
        .find(
          (l) =>
            l.includes('route="/:service/mcp"') && l.includes('method="POST"') && l.includes('status="200"'),
        );
      return Number(line?.split(" ").pop() ?? 0);
    };
    const token = await gw.token("echo");
    await post("echo", token);
    const before = await count();
    for (let i = 0; i < 3; i++) expect((await post("echo", token)).status).toBe(200);
    // Counted when the response closes, which may be just after the client read it.
    await expect.poll(count, { timeout: 5000 }).toBe(before + 3);
  });
});
