/**
 * The bridge's 2026-07-28 side against 2025-era stdio servers: the SDK v2 client pinned to the
 * current revision (and raw requests where the wire shape matters) against the everything
 * server from npm and a tiny SDK v1 server that asks for elicitation, adds tools and logs.
 */
import { fileURLToPath } from "node:url";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { afterEach, describe, expect, it } from "vitest";
import { type BridgeOptions, type RunningBridge, startBridge } from "../../src/bridge/index.js";
import { everything, post, waitFor } from "./helpers.js";

const ENVELOPE = {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientCapabilities": {},
  "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
};
const MODERN = { "mcp-protocol-version": "2026-07-28" };

/** A 2026-07-28 request body with the envelope (and any more `_meta`). */
function modern(id: number | string, method: string, params: Record<string, unknown> = {}, meta = {}) {
  return { jsonrpc: "2.0", id, method, params: { ...params, _meta: { ...ENVELOPE, ...meta } } };
}

const asking = {
  command: process.execPath,
  args: ["--import", "tsx", fileURLToPath(new URL("./asking-server.ts", import.meta.url))],
};

let bridge: RunningBridge | undefined;
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  await bridge?.close();
  bridge = undefined;
});

async function start(server: { command: string; args: string[] }, overrides: Partial<BridgeOptions> = {}) {
  bridge = await startBridge({
    ...server,
    env: {},
    sessionMode: "per-session",
    maxSessions: 10,
    idleTimeoutSeconds: 600,
    requestTimeoutSeconds: 30,
    ...overrides,
  });
  return bridge;
}

/** The SDK v2 client pinned to 2026-07-28, as `user` (the identity header the gateway would set). */
async function pinned(
  url: string,
  user = "alice",
  capabilities: Record<string, unknown> = {},
): Promise<Client> {
  const client = new Client(
    { name: "stateless-test", version: "1.0.0" },
    {
      capabilities,
      versionNegotiation: { mode: { pin: "2026-07-28" } },
    },
  );
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { "x-user-id": user } } }),
  );
  clients.push(client);
  return client;
}

function textOf(result: unknown): string {
  return ((result as { content: Array<{ text?: string }> }).content ?? []).map((c) => c.text ?? "").join("");
}

describe("2026-07-28 requests to a 2025-era child", () => {
  it("the SDK v2 client pinned to 2026-07-28 discovers, lists and calls the everything server", async () => {
    const { url } = await start(everything);
    const client = await pinned(url);
    expect(client.getProtocolEra()).toBe("modern");
    expect(client.getServerVersion()?.name).toBeTruthy();
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain("echo");
    expect(textOf(await client.callTool({ name: "echo", arguments: { message: "stateless" } }))).toContain(
      "stateless",
    );
    // 2025 sessions still work beside it, on the same URL.
    const legacy = new Client({ name: "legacy", version: "1.0.0" });
    await legacy.connect(new StreamableHTTPClientTransport(new URL(url)));
    clients.push(legacy);
    expect(legacy.getProtocolEra()).toBe("legacy");
    expect((await legacy.listTools()).tools.length).toBe(tools.length);
  });

  it("answers server/discover from the child's initialize result, and marks results complete", async () => {
    const { url } = await start(everything);
    const res = await post(url, modern("d", "server/discover"), MODERN);
    expect(res.status).toBe(200);
    const discover = (await res.json()) as { result: Record<string, unknown> };
    expect(discover.result).toMatchObject({
      supportedVersions: ["2026-07-28"],
      capabilities: { tools: {} },
      resultType: "complete",
      _meta: { "io.modelcontextprotocol/serverInfo": { name: expect.any(String) } },
    });
    const list = (await (await post(url, modern(2, "tools/list"), MODERN)).json()) as {
      id: number;
      result: { tools: unknown[]; resultType: string };
    };
    expect(list.id).toBe(2);
    expect(list.result.resultType).toBe("complete");
    expect(list.result.tools.length).toBeGreaterThan(0);
  });

  it("refuses an unknown revision, a broken envelope and session-only methods in the protocol's errors", async () => {
    const { url } = await start(everything);
    const future = modern(1, "tools/list", {}, { "io.modelcontextprotocol/protocolVersion": "2099-01-01" });
    const unsupported = await post(url, future, MODERN);
    expect(unsupported.status).toBe(400);
    expect(await unsupported.json()).toMatchObject({
      id: 1,
      error: { code: -32022, data: { supported: ["2026-07-28"], requested: "2099-01-01" } },
    });
    const noCapabilities = {
      jsonrpc: "2.0",
      id: 2,
      method: "tools/list",
      params: { _meta: { "io.modelcontextprotocol/protocolVersion": "2026-07-28" } },
    };
    const broken = await post(url, noCapabilities, MODERN);
    expect(broken.status).toBe(400);
    expect(await broken.json()).toMatchObject({ id: 2, error: { code: -32602 } });
    const setLevel = await post(url, modern(3, "logging/setLevel", { level: "debug" }), MODERN);
    expect(setLevel.status).toBe(404);
    expect(await setLevel.json()).toMatchObject({ id: 3, error: { code: -32601 } });
    const headerOnly = await post(url, { jsonrpc: "2.0", id: 4, method: "tools/list" }, MODERN);
    expect(headerOnly.status).toBe(400);
    // The child's own "Method not found" is a 404, as 2026-07-28 over HTTP has it.
    const unknown = await post(url, modern(5, "no/such-method"), MODERN);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ id: 5, error: { code: -32601 } });
  });

  it("pools children by user and declared capabilities", async () => {
    const { url } = await start(everything);
    await pinned(url, "alice");
    await (await pinned(url, "alice")).listTools();
    expect(bridge?.childPids()).toHaveLength(1);
    await pinned(url, "bob");
    expect(bridge?.childPids()).toHaveLength(2);
    await pinned(url, "alice", { elicitation: {} });
    expect(bridge?.childPids()).toHaveLength(3);
  });

  it("MRTR: the child's elicitation becomes input_required, and the client's answer reaches the child", async () => {
    const { url } = await start(asking);
    const client = await pinned(url, "alice", { elicitation: { form: {} } });
    const asked: unknown[] = [];
    client.setRequestHandler("elicitation/create", async (request) => {
      asked.push(request.params);
      return { action: "accept", content: { name: "Ada" } };
    });
    expect(textOf(await client.callTool({ name: "ask_name", arguments: {} }))).toBe("Hello, Ada!");
    expect(asked).toEqual([expect.objectContaining({ message: "What is your name?" })]);
  });

  it("MRTR on the wire: input_required with requestState, then the retry's result", async () => {
    const { url } = await start(asking);
    const caps = { "io.modelcontextprotocol/clientCapabilities": { elicitation: { form: {} } } };
    const first = (await (
      await post(url, modern(1, "tools/call", { name: "ask_name" }, caps), MODERN)
    ).json()) as {
      id: number;
      result: { resultType: string; inputRequests: Record<string, { method: string }>; requestState: string };
    };
    expect(first.id).toBe(1);
    expect(first.result.resultType).toBe("input_required");
    const [key, request] = Object.entries(first.result.inputRequests)[0] ?? [];
    expect(request?.method).toBe("elicitation/create");
    expect(first.result.requestState).toMatch(/^[\w-]{20,}$/);
    // Someone else's retry with the same state is refused, and changes nothing.
    const stolen = modern(
      9,
      "tools/call",
      {
        name: "ask_name",
        inputResponses: { [key as string]: { action: "accept", content: { name: "Eve" } } },
        requestState: first.result.requestState,
      },
      caps,
    );
    const refused = await post(url, stolen, { ...MODERN, "x-user-id": "mallory" });
    expect(await refused.json()).toMatchObject({ id: 9, error: { code: -32602 } });
    const retry = modern(
      2,
      "tools/call",
      {
        name: "ask_name",
        inputResponses: { [key as string]: { action: "accept", content: { name: "Grace" } } },
        requestState: first.result.requestState,
      },
      caps,
    );
    const done = (await (await post(url, retry, MODERN)).json()) as {
      id: number;
      result: Record<string, unknown>;
    };
    expect(done).toMatchObject({ id: 2, result: { resultType: "complete" } });
    expect(textOf(done.result)).toBe("Hello, Grace!");
  });

  it("answers -32021 (400) when the child needs a capability the client did not declare", async () => {
    // Shared mode: the one child was initialized for a client that can answer elicitation.
    const { url } = await start(asking, { sessionMode: "shared" });
    const caps = { "io.modelcontextprotocol/clientCapabilities": { elicitation: { form: {} } } };
    expect((await post(url, modern(0, "tools/list", {}, caps), MODERN)).status).toBe(200);
    // A client that declared nothing calls the tool that asks.
    const res = await post(url, modern(1, "tools/call", { name: "ask_name" }), MODERN);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      id: 1,
      error: { code: -32021, data: { requiredCapabilities: { elicitation: {} } } },
    });
    // The child was told no and let go of the request: the next call is served.
    const next = await post(url, modern(2, "tools/call", { name: "log_level" }), MODERN);
    expect(next.status).toBe(200);
  });

  it("subscriptions/listen gets the list-changed notification the child sends", async () => {
    const { url } = await start(asking);
    const client = await pinned(url);
    let changes = 0;
    client.setNotificationHandler("notifications/tools/list_changed", () => {
      changes += 1;
    });
    const subscription = await client.listen({ toolsListChanged: true });
    expect(textOf(await client.callTool({ name: "add_tool", arguments: {} }))).toBe("added_1");
    await waitFor(() => changes === 1);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("added_1");
    await subscription.close();
  });

  it("applies the request's log level: logging/setLevel to the child, and only logs at or above it", async () => {
    const { url } = await start(asking);
    const level = { "io.modelcontextprotocol/logLevel": "warning" };
    const res = await post(url, modern(1, "tools/call", { name: "log_twice" }, level), MODERN);
    const body = await res.text();
    expect(body).toContain("a warning line");
    expect(body).not.toContain("a debug line");
    expect(body).toContain('"resultType":"complete"');
    const seen = (await (
      await post(url, modern(2, "tools/call", { name: "log_level" }, level), MODERN)
    ).json()) as {
      result: unknown;
    };
    expect(textOf(seen.result)).toBe("warning");
    // Without a level in the envelope, no logs at all (2026-07-28: logging is asked for per request).
    const quiet = await (await post(url, modern(3, "tools/call", { name: "log_twice" }), MODERN)).text();
    expect(quiet).not.toContain("line");
  });

  it("shared mode: stateless requests use the one child the sessions share", async () => {
    const { url } = await start(everything, { sessionMode: "shared" });
    const legacy = new Client({ name: "legacy", version: "1.0.0" });
    await legacy.connect(new StreamableHTTPClientTransport(new URL(url)));
    clients.push(legacy);
    await (await pinned(url, "alice")).listTools();
    await (await pinned(url, "bob", { sampling: {} })).listTools();
    // The probe's child (2025-era: it refused server/discover) is not kept beside the shared one.
    await waitFor(() => bridge?.childPids().length === 1);
  });

  it("a stateless client's notifications/cancelled ends its request, and the child stays usable", async () => {
    const { url } = await start(everything);
    const carol = { ...MODERN, "x-user-id": "carol" };
    const slow = modern(
      "slow",
      "tools/call",
      { name: "trigger-long-running-operation", arguments: { duration: 20, steps: 20 } },
      { progressToken: "p" },
    );
    const answer = await post(url, slow, carol);
    // Progress streams first: then the request is surely on the child.
    const reader = (answer.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let seen = "";
    while (!seen.includes("notifications/progress")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended early: ${seen}`);
      seen += decoder.decode(value);
    }
    const cancel = {
      jsonrpc: "2.0",
      method: "notifications/cancelled",
      params: { requestId: "slow", reason: "changed my mind", _meta: ENVELOPE },
    };
    expect((await post(url, cancel, carol)).status).toBe(202);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += decoder.decode(value);
    }
    // The stream ends without a result, long before the 20 s the tool would take.
    expect(seen).not.toContain('"result"');
    const after = await post(url, modern(2, "tools/list"), carol);
    expect(after.status).toBe(200);
    expect(bridge?.childPids()).toHaveLength(1);
  });

  it("ends a pooled child once it has been idle for the idle timeout", async () => {
    const { url } = await start(everything, { idleTimeoutSeconds: 1 });
    expect((await post(url, modern(1, "tools/list"), MODERN)).status).toBe(200);
    expect(bridge?.childPids()).toHaveLength(1);
    await waitFor(() => bridge?.childPids().length === 0);
    // And the next request gets a fresh one.
    expect((await post(url, modern(2, "tools/list"), MODERN)).status).toBe(200);
  });
});
