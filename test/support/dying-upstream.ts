/**
 * A real upstream MCP server run as its own process, so a test can kill -9 it in the middle
 * of an answer: the MCP SDK v1 server over Streamable HTTP (stateless, SSE answers) on
 * 127.0.0.1:PORT (argv[2]). Prints `listening PORT` when ready.
 *
 * Tools:
 *   hang   sends one log notification on the answer's stream, prints `streaming`, and never
 *          answers (the test kills the process while the stream is open)
 */
import { createServer } from "node:http";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";

function buildServer(): McpServer {
  const server = new McpServer(
    { name: "dying-upstream", version: "1.0.0" },
    { capabilities: { logging: {} } },
  );
  server.registerTool(
    "hang",
    { description: "Start a streamed answer and never finish it" },
    async (extra) => {
      await extra.sendNotification({
        method: "notifications/message",
        params: { level: "info", data: "started" },
      });
      process.stdout.write("streaming\n");
      return new Promise<never>(() => undefined);
    },
  );
  return server;
}

const port = Number(process.argv[2] ?? 0);
const http = createServer(async (req, res) => {
  // Stateless: one server and transport per request, so every POST gets its own SSE answer.
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  await buildServer().connect(transport);
  await transport.handleRequest(req, res);
});
http.listen(port, "127.0.0.1", () => {
  const address = http.address();
  process.stdout.write(`listening ${typeof address === "object" && address ? address.port : port}\n`);
});
