/**
 * A real upstream MCP server for tests: the SDK's McpServer over StreamableHTTPServerTransport
 * (stateful sessions) on node:http, 127.0.0.1, port 0. It records the headers of every request
 * it receives, so tests can see exactly what crossed the gateway.
 *
 * Tools:
 *   whoami       returns the request headers the tool call arrived with (JSON text)
 *   slow_stream  sends `count` log notifications `delayMs` apart on the response stream, then
 *                returns "done"
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
  close(): Promise<void>;
}

function buildServer(): McpServer {
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
  return server;
}

/** Starts the upstream; `path` is where the MCP endpoint lives (default /mcp). */
export async function startUpstream(path = "/mcp"): Promise<TestUpstream> {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const requests: RecordedRequest[] = [];
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
        await buildServer().connect(created);
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
