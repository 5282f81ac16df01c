import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../../src/bridge/index.js";
import { everythingBridge, initializeRequest, post } from "./helpers.js";

let bridge: RunningBridge;
let sid: string;

beforeAll(async () => {
  ({ bridge } = await everythingBridge({ maxBodyBytes: 10_000 }));
  const res = await post(bridge.url, initializeRequest(1));
  await res.json();
  sid = res.headers.get("mcp-session-id") as string;
  await post(bridge.url, { jsonrpc: "2.0", method: "notifications/initialized" }, { "mcp-session-id": sid });
});

afterAll(async () => {
  await bridge?.close();
});

const listTools = (id: number | string) => ({ jsonrpc: "2.0", id, method: "tools/list" });

async function expectRpcError(res: Response, status: number, code: number, message: RegExp) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toBe("application/json");
  const body = await res.json();
  expect(body).toMatchObject({
    jsonrpc: "2.0",
    id: null,
    error: { code, message: expect.stringMatching(message) },
  });
}

describe("bridge HTTP endpoint", () => {
  it("requires the session header on non-initialize requests (400)", async () => {
    await expectRpcError(
      await post(bridge.url, listTools(2)),
      400,
      -32000,
      /Mcp-Session-Id header is required/,
    );
  });

  it("answers 404 for an unknown session", async () => {
    await expectRpcError(
      await post(bridge.url, listTools(2), { "mcp-session-id": "no-such-session" }),
      404,
      -32001,
      /Session not found/,
    );
    const get = await fetch(bridge.url, {
      headers: { accept: "text/event-stream", "mcp-session-id": "nope" },
    });
    expect(get.status).toBe(404);
  });

  it("rejects bodies that are not JSON, not JSON-RPC, too large, or not application/json", async () => {
    const headers = { "mcp-session-id": sid };
    await expectRpcError(await post(bridge.url, "{not json", headers), 400, -32700, /Parse error/);
    await expectRpcError(await post(bridge.url, { hello: "world" }, headers), 400, -32600, /Invalid Request/);
    await expectRpcError(await post(bridge.url, [], headers), 400, -32600, /Invalid Request/);
    const big = { jsonrpc: "2.0", method: "notifications/x", params: { pad: "x".repeat(20_000) } };
    await expectRpcError(await post(bridge.url, big, headers), 413, -32600, /over 10000 bytes/);
    await expectRpcError(
      await post(bridge.url, listTools(3), { ...headers, "content-type": "text/plain" }),
      415,
      -32000,
      /application\/json/,
    );
    await expectRpcError(
      await post(bridge.url, [initializeRequest(4), listTools(5)]),
      400,
      -32600,
      /initialize must be sent alone/,
    );
  });

  it("accepts client notifications with 202 and no body", async () => {
    const res = await post(
      bridge.url,
      { jsonrpc: "2.0", method: "notifications/roots/list_changed" },
      { "mcp-session-id": sid },
    );
    expect(res.status).toBe(202);
    expect(await res.text()).toBe("");
  });

  it("answers a batch with a batch, ids as the client sent them", async () => {
    const res = await post(bridge.url, [listTools("a"), listTools(7)], { "mcp-session-id": sid });
    const body = (await res.json()) as Array<{ id: unknown; result: { tools: unknown[] } }>;
    expect(body.map((r) => r.id).sort()).toEqual([7, "a"].sort());
    for (const r of body) expect(r.result.tools.length).toBeGreaterThan(0);
  });

  it("refuses a second GET stream, GET without SSE, other methods and other paths", async () => {
    const first = await fetch(bridge.url, {
      headers: { accept: "text/event-stream", "mcp-session-id": sid },
    });
    expect(first.status).toBe(200);
    const second = await fetch(bridge.url, {
      headers: { accept: "text/event-stream", "mcp-session-id": sid },
    });
    await expectRpcError(second, 409, -32000, /already has a GET stream/);
    await first.body?.cancel();
    const noSse = await fetch(bridge.url, { headers: { accept: "application/json", "mcp-session-id": sid } });
    await expectRpcError(noSse, 406, -32000, /text\/event-stream/);
    const put = await fetch(bridge.url, { method: "PUT", headers: { "mcp-session-id": sid } });
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")).toBe("GET, POST, DELETE");
    const other = await post(bridge.url.replace(/\/mcp$/, "/other"), listTools(1));
    expect(other.status).toBe(404);
  });

  it("DELETE ends the session: later requests get 404", async () => {
    const res = await post(bridge.url, initializeRequest(1));
    await res.json();
    const id = res.headers.get("mcp-session-id") as string;
    const del = await fetch(bridge.url, { method: "DELETE", headers: { "mcp-session-id": id } });
    expect(del.status).toBe(200);
    expect((await post(bridge.url, listTools(2), { "mcp-session-id": id })).status).toBe(404);
    expect((await fetch(bridge.url, { method: "DELETE", headers: { "mcp-session-id": id } })).status).toBe(
      404,
    );
  });
});

describe("bridge DNS-rebinding guard", () => {
  it("refuses a foreign Host header on a loopback bridge, and accepts loopback names", async () => {
    const { request } = await import("node:http");
    const { port } = new URL(bridge.url);
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          {
            host: "127.0.0.1",
            port,
            path: "/mcp",
            method: "DELETE",
            headers: { host, "mcp-session-id": "x" },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on("error", reject);
        req.end();
      });
    expect(await status(`evil.example:${port}`)).toBe(403);
    expect(await status(`localhost:${port}`)).toBe(404);
    expect(await status(`127.0.0.1:${port}`)).toBe(404);
  });
});
