import { CreateMessageRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { describe, expect, it } from "vitest";
import { closedAfterEach, connectClient, everythingBridge, initializeRequest, post } from "./helpers.js";

const open = closedAfterEach();

/** Read SSE `data:` payloads from a streaming response until `until` matches one. */
async function readEvents(
  res: Response,
  until: (msg: Record<string, unknown>) => boolean,
  timeoutMs = 10_000,
) {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const seen: Array<Record<string, unknown>> = [];
  let buffer = "";
  const timer = setTimeout(() => reader.cancel(), timeoutMs);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return seen;
      buffer += decoder.decode(value, { stream: true });
      let cut = buffer.indexOf("\n\n");
      while (cut !== -1) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        cut = buffer.indexOf("\n\n");
        const data = event
          .split("\n")
          .filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5).trim())
          .join("\n");
        if (!data) continue;
        const msg = JSON.parse(data) as Record<string, unknown>;
        seen.push(msg);
        if (until(msg)) return seen;
      }
    }
  } finally {
    clearTimeout(timer);
    reader.cancel().catch(() => {});
  }
}

for (const sessionMode of ["per-session", "shared"] as const) {
  describe(`open.bridge streams (${sessionMode})`, () => {
    it("delivers a server notification on the session's GET stream", async () => {
      ({ bridge: open.bridge } = await everythingBridge({ sessionMode }));
      const init = await post(open.bridge.url, initializeRequest(1));
      expect(init.status).toBe(200);
      const sid = init.headers.get("mcp-session-id") as string;
      expect(sid).toMatch(/^[0-9a-f-]{36}$/);
      await init.json();
      const headers = { "mcp-session-id": sid };
      const ack = await post(
        open.bridge.url,
        { jsonrpc: "2.0", method: "notifications/initialized" },
        headers,
      );
      expect(ack.status).toBe(202);
      const stream = await fetch(open.bridge.url, { headers: { ...headers, accept: "text/event-stream" } });
      expect(stream.status).toBe(200);
      expect(stream.headers.get("content-type")).toBe("text/event-stream");
      const call = await post(
        open.bridge.url,
        {
          jsonrpc: "2.0",
          id: 2,
          method: "tools/call",
          params: { name: "toggle-simulated-logging", arguments: {} },
        },
        headers,
      );
      // Nothing related to the call needed streaming: a plain JSON answer with the client's id.
      expect(call.headers.get("content-type")).toBe("application/json");
      expect(await call.json()).toMatchObject({
        jsonrpc: "2.0",
        id: 2,
        result: { content: [{ type: "text" }] },
      });
      const events = await readEvents(stream, (m) => m.method === "notifications/message");
      const log = events.find((m) => m.method === "notifications/message");
      expect(log).toMatchObject({
        jsonrpc: "2.0",
        method: "notifications/message",
        params: { level: expect.any(String) },
      });
      expect(log).not.toHaveProperty("id");
    });

    it("streams progress on the POST and routes a sampling request to the client and back", async () => {
      ({ bridge: open.bridge } = await everythingBridge({ sessionMode }));
      const client = await connectClient(open.bridge.url, { sampling: {} });
      open.clients.push(client);
      const progress: number[] = [];
      const done = await client.callTool(
        { name: "trigger-long-running-operation", arguments: { duration: 0.4, steps: 4 } },
        undefined,
        { onprogress: (p) => progress.push(p.progress) },
      );
      expect(progress).toEqual([1, 2, 3, 4]);
      expect(JSON.stringify(done)).toContain("Long running operation completed");

      client.setRequestHandler(CreateMessageRequestSchema, async () => ({
        model: "test-model",
        role: "assistant",
        content: { type: "text", text: "sampled by the test client" },
      }));
      const sampled = await client.callTool({
        name: "trigger-sampling-request",
        arguments: { prompt: "hi" },
      });
      expect(JSON.stringify(sampled)).toContain("sampled by the test client");
    });
  });
}

describe("bridge protocol pass-through", () => {
  it("does not rewrite the protocol version, and answers in SSE when only SSE is accepted", async () => {
    ({ bridge: open.bridge } = await everythingBridge());
    for (const version of ["2024-11-05", "2025-03-26", "2025-06-18"]) {
      const res = await post(open.bridge.url, initializeRequest("init-1", version));
      const body = (await res.json()) as { id: unknown; result: { protocolVersion: string } };
      expect(body.id).toBe("init-1");
      expect(body.result.protocolVersion).toBe(version);
    }
    const sse = await post(open.bridge.url, initializeRequest(7), { accept: "text/event-stream" });
    expect(sse.headers.get("content-type")).toBe("text/event-stream");
    const [reply] = await readEvents(sse, (m) => m.id === 7);
    expect(reply).toMatchObject({ id: 7, result: { serverInfo: expect.any(Object) } });
  });
});
