/**
 * Upstream for the proxy scenarios: a real MCP server from the SDK (McpServer over
 * StreamableHTTPServerTransport) on node:http, stateless with JSON responses, exposing one
 * `echo` tool at /mcp. Stateless transports serve one request each (the SDK refuses reuse), so
 * every request gets a fresh server and transport, as the SDK's stateless example does. They
 * share one JSON Schema validator: by default each server compiles its own Ajv, which would
 * make the baseline mostly Ajv set-up and garbage collection.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { AjvJsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/ajv";
import { z } from "zod";

const jsonSchemaValidator = new AjvJsonSchemaValidator();

function buildServer(): McpServer {
  const server = new McpServer({ name: "bench-upstream", version: "1.0.0" }, { jsonSchemaValidator });
  server.registerTool(
    "echo",
    { description: "Echo the text back", inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: "text", text }] }),
  );
  return server;
}

const httpServer = createServer(async (req, res) => {
  if (!req.url?.startsWith("/mcp")) {
    res.writeHead(404, { "content-type": "text/plain" }).end("not found");
    return;
  }
  const server = buildServer();
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: true,
  });
  res.on("close", () => {
    void transport.close();
    void server.close();
  });
  try {
    await server.connect(transport);
    await transport.handleRequest(req, res);
  } catch (err) {
    if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" }).end(String(err));
  }
});

httpServer.listen(0, "127.0.0.1", () => {
  const { port } = httpServer.address() as AddressInfo;
  process.stdout.write(`READY ${JSON.stringify({ url: `http://127.0.0.1:${port}/mcp` })}\n`);
});
process.on("SIGTERM", () => {
  httpServer.closeAllConnections();
  httpServer.close(() => process.exit(0));
});
