/**
 * The proxy: what reaches the upstream (identity yes, credentials and spoofed identity no),
 * streaming without buffering, MCP session headers both ways, and clear errors when the
 * upstream is down, slow, or the body is too big.
 */

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { MCP_HEADERS, postInitialize, raw } from "../support/mcp-http.js";
import { freePort, startHangingServer, startUpstream, type TestUpstream } from "../support/upstream.js";
import { waitFor } from "../support/wait.js";

let upstream: TestUpstream;
let hanging: Awaited<ReturnType<typeof startHangingServer>>;
let gw: TestGateway;
/** An upstream that sends one SSE event and then dies mid-stream. */
const breaking = createServer((_req, res) => {
  res.writeHead(200, { "content-type": "text/event-stream" });
  res.write('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\n\n');
  setTimeout(() => res.socket?.destroy(), 100);
});

/** An upstream that never answers, and notes when each request arrives and when the gateway lets go of it. */
const arrived: number[] = [];
const released: number[] = [];
const stalling = createServer((req) => {
  arrived.push(Date.now());
  req.socket.once("close", () => released.push(Date.now()));
});

beforeAll(async () => {
  upstream = await startUpstream();
  await new Promise<void>((r) => stalling.listen(0, "127.0.0.1", r));
  hanging = await startHangingServer();
  await new Promise<void>((r) => breaking.listen(0, "127.0.0.1", r));
  gw = await startGateway({
    gateway: { upstream_timeout: 1, max_body: 64 * 1024 },
    services: {
      echo: { url: upstream.url },
      down: { url: `http://127.0.0.1:${await freePort()}/mcp` },
      slow: { url: hanging.url },
      breaking: { url: `http://127.0.0.1:${(breaking.address() as AddressInfo).port}/mcp` },
      stalling: { url: `http://127.0.0.1:${(stalling.address() as AddressInfo).port}/mcp` },
    },
  });
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
  await hanging?.close();
  await new Promise((r) => breaking.close(r));
  stalling.closeAllConnections();
  await new Promise((r) => stalling.close(r));
});

async function connectClient(token: string, headers: Record<string, string> = {}) {
  const client = new Client({ name: "gateway-test", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}/echo/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}`, ...headers } },
  });
  await client.connect(transport);
  return { client, transport };
}

function toolText(result: unknown): string {
  const content = (result as { content: Array<{ type: string; text: string }> }).content;
  return content[0]?.text ?? "";
}

describe("through the gateway with the MCP SDK client", () => {
  it("calls a tool; the upstream sees the identity from the token and nothing the client forged", async () => {
    const token = await gw.token("echo", {
      sub: "github|42",
      preferred_username: "alice",
      email: "alice@example.com",
      client_id: "client-abc",
    });
    const { client } = await connectClient(token, {
      "x-user-id": "spoofed-admin",
      "x-user-name": "root",
      "x-auth-client-id": "evil",
      "x-auth-anything": "evil",
      cookie: "session=stolen",
    });
    try {
      const headers = JSON.parse(toolText(await client.callTool({ name: "whoami", arguments: {} })));
      expect(headers["x-user-id"]).toBe("github|42");
      expect(headers["x-user-name"]).toBe("alice");
      expect(headers["x-user-email"]).toBe("alice@example.com");
      expect(headers["x-auth-client-id"]).toBe("client-abc");
      expect(headers["x-auth-anything"]).toBeUndefined();
      expect(headers.authorization).toBeUndefined();
      expect(headers.cookie).toBeUndefined();
      expect(headers["mcp-session-id"]).toBeTruthy();
      expect(headers["mcp-protocol-version"]).toBeTruthy();
    } finally {
      await client.close();
    }
    // Not one request of the session carried the client's token upstream.
    const leaked = upstream.requests.filter((r) => JSON.stringify(r.headers).includes(token));
    expect(leaked).toEqual([]);
    expect(upstream.requests.every((r) => r.headers.authorization === undefined)).toBe(true);
  });

  it("delivers each SSE event as the upstream sends it", async () => {
    const token = await gw.token("echo");
    const { client } = await connectClient(token);
    // The upstream sends tick 2 only once this client has seen tick 1: a gateway that held the
    // stream back would never let it (the tool then answers "gate timed out").
    const gate = `sdk-${Date.now()}`;
    const seen: string[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      seen.push(String(n.params.data));
      if (n.params.data === "tick 1") upstream.openGate(gate);
    });
    try {
      const result = await client.callTool({ name: "gated_stream", arguments: { gate } });
      expect(toolText(result)).toBe("done");
      expect(seen).toEqual(["tick 1", "tick 2"]);
    } finally {
      await client.close();
    }
  }, 30_000);
});

describe("raw streaming and session headers", () => {
  it("first SSE chunk reaches a raw client before the upstream's stream ends", async () => {
    const token = await gw.token("echo");
    const auth = { authorization: `Bearer ${token}` };
    const init = await postInitialize(`${gw.url}/echo/mcp`, auth);
    expect(init.status).toBe(200);
    const sid = init.headers["mcp-session-id"] as string;
    const version = { "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18" };
    await raw(`${gw.url}/echo/mcp`, {
      method: "POST",
      headers: { ...MCP_HEADERS, ...auth, ...version },
      body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
    });
    const gate = `raw-${Date.now()}`;
    const res = await request(`${gw.url}/echo/mcp`, {
      method: "POST",
      headers: { ...MCP_HEADERS, ...auth, ...version },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 2,
        method: "tools/call",
        params: { name: "gated_stream", arguments: { gate } },
      }),
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toContain("text/event-stream");
    // What arrived, in order, and when the gate was opened: only once tick 1 was here.
    const order: string[] = [];
    let text = "";
    for await (const chunk of res.body) {
      text += chunk.toString();
      for (const mark of ["tick 1", "tick 2", '"done"', "gate timed out"])
        if (text.includes(mark) && !order.includes(mark)) order.push(mark);
      if (order.includes("tick 1") && !order.includes("gate opened")) {
        order.push("gate opened");
        upstream.openGate(gate);
      }
    }
    expect(order).toEqual(["tick 1", "gate opened", "tick 2", '"done"']);
  }, 30_000);

  it("passes Mcp-Session-Id back, GET streams and DELETE through", async () => {
    const token = await gw.token("echo");
    const auth = { authorization: `Bearer ${token}` };
    const init = await postInitialize(`${gw.url}/echo/mcp`, auth);
    const sid = init.headers["mcp-session-id"] as string;
    expect(sid).toMatch(/^[0-9a-f-]{36}$/);

    const opened = Date.now();
    const get = await request(`${gw.url}/echo/mcp`, {
      headers: {
        ...auth,
        accept: "text/event-stream",
        "mcp-session-id": sid,
        "mcp-protocol-version": "2025-06-18",
      },
    });
    // The stream's headers are flushed at once, not with its first event (15 s keep-alive away).
    expect(Date.now() - opened).toBeLessThan(1000);
    expect(get.statusCode).toBe(200);
    expect(get.headers["content-type"]).toContain("text/event-stream");
    get.body.destroy();

    const del = await raw(`${gw.url}/echo/mcp`, {
      method: "DELETE",
      headers: { ...auth, "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18" },
    });
    expect(del.status).toBe(200);
    const after = await postInitialize(`${gw.url}/echo/mcp`, { ...auth, "mcp-session-id": sid });
    expect(after.status).toBe(404);
    const seen = upstream.requests.filter((r) => r.headers["mcp-session-id"] === sid).map((r) => r.method);
    expect(seen).toEqual(expect.arrayContaining(["GET", "DELETE", "POST"]));
  });

  it("a client closing its SSE stream closes the upstream stream too", async () => {
    const token = await gw.token("echo");
    const auth = { authorization: `Bearer ${token}` };
    const sid = (await postInitialize(`${gw.url}/echo/mcp`, auth)).headers["mcp-session-id"] as string;
    const headers = {
      ...auth,
      accept: "text/event-stream",
      "mcp-session-id": sid,
      "mcp-protocol-version": "2025-06-18",
    };
    const first = await request(`${gw.url}/echo/mcp`, { headers });
    expect(first.statusCode).toBe(200);
    // The SDK allows one standalone stream per session: a second one is 409 while the first lives.
    const second = await request(`${gw.url}/echo/mcp`, { headers });
    expect(second.statusCode).toBe(409);
    await second.body.dump();
    first.body.destroy();
    // Once the gateway has closed the upstream stream, the SDK takes a new one.
    const status = await waitFor("a second standalone stream to be taken", async () => {
      const again = await request(`${gw.url}/echo/mcp`, { headers });
      // A 200 is the open stream itself: let it go (the abort this raises is ours).
      again.body.on("error", () => {});
      again.body.destroy();
      return again.statusCode === 409 ? undefined : again.statusCode;
    });
    expect(status).toBe(200);
  });

  it("Mcp-Method, Mcp-Name and Mcp-Param-* reach the upstream", async () => {
    const token = await gw.token("echo");
    const res = await postInitialize(`${gw.url}/echo/mcp`, {
      authorization: `Bearer ${token}`,
      "mcp-method": "initialize",
      "mcp-name": "x",
      "mcp-param-region": "eu",
      "last-event-id": "7",
    });
    expect(res.status).toBe(200);
    const last = upstream.requests.at(-1);
    expect(last?.headers).toMatchObject({
      "mcp-method": "initialize",
      "mcp-name": "x",
      "mcp-param-region": "eu",
      "last-event-id": "7",
    });
  });
});

describe("upstream failures and limits", () => {
  it("upstream down: 502 JSON-RPC error answering the request's id", async () => {
    const res = await postInitialize(`${gw.url}/down/mcp`, {
      authorization: `Bearer ${await gw.token("down")}`,
    });
    expect(res.status).toBe(502);
    expect(JSON.parse(res.text)).toEqual({
      jsonrpc: "2.0",
      error: { code: -32000, message: "The upstream of down is unavailable" },
      id: 1,
    });
  });

  it("upstream dying mid-stream: the client's stream ends too, after the event that was sent", async () => {
    const res = await request(`${gw.url}/breaking/mcp`, {
      method: "GET",
      headers: { accept: "text/event-stream", authorization: `Bearer ${await gw.token("breaking")}` },
    });
    expect(res.statusCode).toBe(200);
    let received = "";
    const ended = await Promise.race([
      (async () => {
        try {
          for await (const chunk of res.body) received += chunk;
        } catch {
          // a reset connection is an acceptable end
        }
        return "ended";
      })(),
      new Promise((r) => setTimeout(() => r("hung"), 5000)),
    ]);
    expect(ended).toBe("ended");
    expect(received).toContain("notifications/progress");
  });

  it("a client leaving before the upstream answers releases the upstream request at once", async () => {
    const token = await gw.token("stalling");
    const leaving = new AbortController();
    const sent = request(`${gw.url}/stalling/mcp`, {
      method: "POST",
      headers: { ...MCP_HEADERS, authorization: `Bearer ${token}` },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
      signal: leaving.signal,
    });
    await waitFor("the request to reach the upstream", () => arrived.length === 1);
    expect(released).toHaveLength(0);
    const leftAt = Date.now();
    leaving.abort();
    await expect(sent).rejects.toThrow();
    await waitFor("the upstream request to be released", () => released.length === 1);
    // Released because the client left (tens of ms), not by the 1 s upstream timeout, which
    // started at the gateway's send, just before the arrival, so it ends ~1 s after leftAt.
    expect((released[0] as number) - leftAt).toBeLessThan(500);
  });

  it("upstream hanging: 504 after the configured timeout", async () => {
    const start = Date.now();
    const res = await postInitialize(`${gw.url}/slow/mcp`, {
      authorization: `Bearer ${await gw.token("slow")}`,
    });
    expect(res.status).toBe(504);
    expect(Date.now() - start).toBeGreaterThanOrEqual(900);
    expect(JSON.parse(res.text).error.message).toBe("The upstream of slow did not answer in time");
  });

  it("a declared body over max_body: 413 without contacting the upstream", async () => {
    const before = upstream.requests.length;
    const res = await raw(`${gw.url}/echo/mcp`, {
      method: "POST",
      headers: { ...MCP_HEADERS, authorization: `Bearer ${await gw.token("echo")}` },
      body: Buffer.alloc(65 * 1024, 0x20),
    });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.text).error.code).toBe(-32000);
    expect(upstream.requests.length).toBe(before);
  });

  it("a chunked body over max_body: 413", async () => {
    const token = await gw.token("echo");
    async function* chunks() {
      for (let i = 0; i < 20; i++) yield Buffer.alloc(8 * 1024, 0x20);
    }
    const res = await request(`${gw.url}/echo/mcp`, {
      method: "POST",
      headers: { ...MCP_HEADERS, authorization: `Bearer ${token}` },
      body: Readable.from(chunks()),
    });
    expect(res.statusCode).toBe(413);
    expect(JSON.parse(await res.body.text()).error.message).toContain("larger than");
  });

  it.each(["PUT", "PATCH", "HEAD"])("%s: 405", async (method) => {
    const res = await raw(`${gw.url}/echo/mcp`, {
      method,
      headers: { authorization: `Bearer ${await gw.token("echo")}` },
    });
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe("GET, POST, DELETE");
  });
});
