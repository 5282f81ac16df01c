/**
 * A real upstream MCP server for tests: the SDK's McpServer over StreamableHTTPServerTransport
 * (stateful sessions) on node:http, 127.0.0.1, port 0. It records the headers of every request
 * it receives, so tests can see exactly what crossed the gateway.
 *
 * Tools:
 *   whoami       returns the request headers the tool call arrived with (JSON text)
 *   slow_stream  sends `count` log notifications `delayMs` apart on the response stream, then
 *                returns "done"
 *   gated_stream sends "tick 1", waits until the test opens gate `gate` (openGate: say, once its
 *                client has seen tick 1), sends "tick 2", returns "done"; "gate timed out" if
 *                nobody opened it within 15 s (a stream held back on the way never gets it open)
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { z } from "zod";

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

export interface TestUpstream {
  /** Base URL of the MCP endpoint, e.g. http://127.0.0.1:1234/mcp */
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** Lets a waiting gated_stream call go on (opens it ahead if it has not reached the gate yet). */
  openGate(name: string): void;
  close(): Promise<void>;
}

/** gated_stream's gates: name -> what opens it. */
class Gates {
  private readonly gates = new Map<string, { promise: Promise<void>; open(): void }>();

  private gate(name: string) {
    let gate = this.gates.get(name);
    if (!gate) {
      let open = () => {};
      const promise = new Promise<void>((r) => {
        open = r;
      });
      gate = { promise, open };
      this.gates.set(name, gate);
    }
    return gate;
  }

  open(name: string): void {
    this.gate(name).open();
  }

  /** True when opened; false after `limitMs` (only a safety net: nothing waits for it). */
  async passed(name: string, limitMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((r) => {
      timer = setTimeout(() => r(false), limitMs);
    });
    try {
      return await Promise.race([this.gate(name).promise.then(() => true as const), late]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function buildServer(gates: Gates): McpServer {
  const server = new McpServer(
    { name: "test-upstream", version: "1.0.0" },
    { capabilities: { logging: {} } },
  );
  server.registerTool("whoami", { description: "Echo the request headers" }, async (extra) => ({
    content: [{ type: "text", text: JSON.stringify(extra.requestInfo?.headers ?? {}) }],
  }));
  server.registerTool(
    "slow_stream",
    {
      description: "Send log notifications slowly, then answer",
      inputSchema: { count: z.number().int().min(1).max(100), delayMs: z.number().int().min(0).max(10_000) },
    },
    async ({ count, delayMs }, extra) => {
      for (let i = 1; i <= count; i++) {
        await extra.sendNotification({
          method: "notifications/message",
          params: { level: "info", data: `tick ${i}` },
        });
        await new Promise((r) => setTimeout(r, delayMs));
      }
      return { content: [{ type: "text", text: "done" }] };
    },
  );
  server.registerTool(
    "gated_stream",
    {
      description: "Send tick 1, wait for the test to open a gate, send tick 2, then answer",
      inputSchema: { gate: z.string().min(1).max(100) },
    },
    async ({ gate }, extra) => {
      const tick = (i: number) =>
        extra.sendNotification({
          method: "notifications/message",
          params: { level: "info", data: `tick ${i}` },
        });
      await tick(1);
      const opened = await gates.passed(gate, 15_000);
      await tick(2);
      return { content: [{ type: "text", text: opened ? "done" : "gate timed out" }] };
    },
  );
  return server;
}

/** Starts the upstream; `path` is where the MCP endpoint lives (default /mcp). */
export async function startUpstream(path = "/mcp"): Promise<TestUpstream> {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const requests: RecordedRequest[] = [];
  const gates = new Gates();
  const httpServer: Server = createServer(async (req, res) => {
    requests.push({ method: req.method ?? "", url: req.url ?? "", headers: { ...req.headers } });
    if (!req.url?.startsWith(path)) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    try {
      const sid = req.headers["mcp-session-id"];
      let transport = typeof sid === "string" ? sessions.get(sid) : undefined;
      if (!transport) {
        if (typeof sid === "string") {
          res.writeHead(404, { "content-type": "application/json" });
          res.end(
            JSON.stringify({
              jsonrpc: "2.0",
              error: { code: -32001, message: "Session not found" },
              id: null,
            }),
          );
          return;
        }
        const created = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => {
            sessions.set(id, created);
          },
        });
        created.onclose = () => {
          if (created.sessionId) sessions.delete(created.sessionId);
        };
        await buildServer(gates).connect(created);
        transport = created;
      }
      await transport.handleRequest(req, res);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    }
  });
  await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  const port = (httpServer.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${path}`,
    port,
    requests,
    openGate: (name) => gates.open(name),
    async close() {
      for (const t of sessions.values()) await t.close().catch(() => undefined);
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}

/** A server that accepts requests and never answers them (for upstream timeouts). */
export async function startHangingServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(() => undefined);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A loopback port nothing listens on (briefly bound, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
