import { describe, expect, it } from "vitest";
import {
  childrenOf,
  closedAfterEach,
  connectClient,
  everythingBridge,
  initializeRequest,
  isAlive,
  post,
  waitFor,
} from "./helpers.js";

const open = closedAfterEach();

async function openSession(url: string): Promise<string> {
  const res = await post(url, initializeRequest(1));
  expect(res.status).toBe(200);
  await res.json();
  return res.headers.get("mcp-session-id") as string;
}

const listTools = { jsonrpc: "2.0", id: 5, method: "tools/list" };

describe("bridge lifecycle", () => {
  it("a killed child fails its pending request, ends its session (404) with its stderr logged, and the next session works", async () => {
    let logs: Awaited<ReturnType<typeof everythingBridge>>["logs"];
    ({ bridge: open.bridge, logs } = await everythingBridge());
    const client = await connectClient(open.bridge.url);
    open.clients.push(client);
    const [pid] = open.bridge.childPids() as [number];
    const sid = (client.transport as { sessionId?: string }).sessionId as string;
    // The kill must find the call running in the child: its first progress notification says so.
    let running!: () => void;
    const started = new Promise<void>((resolve) => {
      running = resolve;
    });
    const pending = client.callTool(
      { name: "trigger-long-running-operation", arguments: { duration: 5, steps: 5 } },
      undefined,
      { onprogress: () => running() },
    );
    await started;
    process.kill(pid, "SIGKILL");
    await expect(pending).rejects.toThrow(/MCP server process exited on SIGKILL/);
    await waitFor(() => open.bridge?.sessions() === 0);
    const after = await post(open.bridge.url, listTools, { "mcp-session-id": sid });
    expect(after.status).toBe(404);
    expect(await after.json()).toMatchObject({
      jsonrpc: "2.0",
      error: { code: -32001, message: "Session not found" },
    });
    const crash = logs.find((l) => l.level === "warn" && l.msg?.includes("exited"));
    expect(crash?.obj).toMatchObject({ pid, signal: "SIGKILL", sessions: [sid] });
    // The everything server announces itself on stderr: the tail is in the log.
    expect(String(crash?.obj.stderr)).toContain("Starting default (STDIO) server");

    const next = await connectClient(open.bridge.url);
    open.clients.push(next);
    expect((await next.listTools()).tools.length).toBeGreaterThan(0);
    expect(open.bridge.childPids()).not.toContain(pid);
  });

  it("reaps idle sessions and their children", async () => {
    ({ bridge: open.bridge } = await everythingBridge({ idleTimeoutSeconds: 1 }));
    const sid = await openSession(open.bridge.url);
    const [pid] = open.bridge.childPids() as [number];
    expect(isAlive(pid)).toBe(true);
    await waitFor(() => open.bridge?.sessions() === 0, 5_000);
    await waitFor(() => !isAlive(pid));
    const res = await post(open.bridge.url, listTools, { "mcp-session-id": sid });
    expect(res.status).toBe(404);
  });

  it("keeps a session that is in use alive past the idle timeout", async () => {
    ({ bridge: open.bridge } = await everythingBridge({ idleTimeoutSeconds: 1 }));
    const client = await connectClient(open.bridge.url);
    open.clients.push(client);
    await client.callTool({ name: "trigger-long-running-operation", arguments: { duration: 2, steps: 2 } });
    expect(open.bridge.sessions()).toBe(1);
  });

  it("close() ends every child, leaving none in the process table", async () => {
    ({ bridge: open.bridge } = await everythingBridge());
    await Promise.all([
      openSession(open.bridge.url),
      openSession(open.bridge.url),
      openSession(open.bridge.url),
    ]);
    const pids = open.bridge.childPids();
    expect(pids).toHaveLength(3);
    for (const pid of pids) expect(childrenOf(process.pid)).toContain(pid);
    await open.bridge.close();
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    for (const pid of pids) expect(childrenOf(process.pid)).not.toContain(pid);
    open.bridge = undefined;
  });

  it("refuses sessions over the limit with 503 and a JSON-RPC error", async () => {
    ({ bridge: open.bridge } = await everythingBridge({ maxSessions: 1 }));
    await openSession(open.bridge.url);
    const res = await post(open.bridge.url, initializeRequest(2));
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({
      jsonrpc: "2.0",
      error: { code: -32000, message: /Too many sessions/ },
    });
    expect(open.bridge.childPids()).toHaveLength(1);
  });

  it("answers a request that outlives the request timeout with a JSON-RPC error", async () => {
    // 3 s, not 1: the child's own start-up (initialize) must fit in it on a busy machine.
    ({ bridge: open.bridge } = await everythingBridge({ requestTimeoutSeconds: 3 }));
    const sid = await openSession(open.bridge.url);
    const res = await post(
      open.bridge.url,
      {
        jsonrpc: "2.0",
        id: "slow",
        method: "tools/call",
        params: { name: "trigger-long-running-operation", arguments: { duration: 8, steps: 1 } },
      },
      { "mcp-session-id": sid },
    );
    expect(await res.json()).toMatchObject({
      id: "slow",
      error: { code: -32001, message: /timed out after 3s/ },
    });
    // The session survives a timeout.
    const again = await post(open.bridge.url, listTools, { "mcp-session-id": sid });
    expect(again.status).toBe(200);
  });

  it("ends a session whose child cannot be started, with a JSON-RPC error", async () => {
    ({ bridge: open.bridge } = await everythingBridge({ command: "/nonexistent/mcp-server", args: [] }));
    const res = await post(open.bridge.url, initializeRequest(1));
    expect(await res.json()).toMatchObject({ id: 1, error: { message: /could not be started/ } });
    await waitFor(() => open.bridge?.sessions() === 0);
  });
});
