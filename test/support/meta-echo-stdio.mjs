/**
 * A stdio MCP server (SDK v1) for bridge tests: its tool `meta` answers with the `_meta` its
 * request arrived with, so a test sees what the bridge put there (SEP-414 trace context).
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";

const server = new McpServer({ name: "meta-echo", version: "1.0.0" });
server.registerTool("meta", { description: "The _meta of this request" }, async (extra) => ({
  content: [{ type: "text", text: JSON.stringify(extra._meta ?? {}) }],
}));
await server.connect(new StdioServerTransport());
