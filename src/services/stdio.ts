/**
 * Run an MCP server on stdin/stdout as a bridge child: exit when stdin closes or on SIGTERM/SIGINT,
 * so a gateway that goes away never leaves one of these behind.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";

/** Connect `server` to stdio and keep the process alive until its peer goes away. */
export async function runStdio(server: McpServer): Promise<void> {
  const transport = new StdioServerTransport();
  const stop = () => {
    void server.close().finally(() => process.exit(0));
  };
  process.stdin.once("end", stop);
  process.stdin.once("close", stop);
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  await server.connect(transport);
}
