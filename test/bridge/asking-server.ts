/**
 * A tiny 2025-era stdio MCP server (SDK v1) for the bridge's 2026-07-28 tests: a tool that asks
 * its client for input with elicitation/create, one that adds a tool (so the server sends
 * tools/list_changed), one that logs at two levels, and one that says which log level the
 * client last set. Run with tsx: `node --import tsx test/bridge/asking-server.ts`.
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { SetLevelRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const server = new McpServer(
  { name: "asking-server", version: "1.0.0" },
  { capabilities: { logging: {}, tools: { listChanged: true } } },
);
let level = "(none)";
let added = 0;

server.registerTool("ask_name", { description: "Asks the client for a name, then greets it" }, async () => {
  const answer = await server.server.elicitInput({
    message: "What is your name?",
    requestedSchema: { type: "object", properties: { name: { type: "string" } }, required: ["name"] },
  });
  if (answer.action !== "accept") return { content: [{ type: "text", text: `no name (${answer.action})` }] };
  return { content: [{ type: "text", text: `Hello, ${String(answer.content?.name)}!` }] };
});

server.registerTool(
  "add_tool",
  { description: "Adds a tool: the server tells its clients the list changed" },
  () => {
    added += 1;
    server.registerTool(`added_${added}`, { description: "added at run time" }, () => ({ content: [] }));
    return { content: [{ type: "text", text: `added_${added}` }] };
  },
);

server.registerTool("log_twice", { description: "Logs once at debug and once at warning" }, async () => {
  await server.server.sendLoggingMessage({ level: "debug", data: "a debug line" });
  await server.server.sendLoggingMessage({ level: "warning", data: "a warning line" });
  return { content: [{ type: "text", text: "logged" }] };
});

server.registerTool("log_level", { description: "The level of the last logging/setLevel" }, () => ({
  content: [{ type: "text", text: level }],
}));

// Record the level, and keep the SDK's own filtering out of the way: the bridge filters.
server.server.setRequestHandler(SetLevelRequestSchema, async (request) => {
  level = request.params.level;
  return {};
});

await server.connect(new StdioServerTransport());
process.stdin.once("end", () => process.exit(0));
