/**
 * A small stdio MCP server (SDK v1) for the cluster tests, in plain JavaScript so that it starts
 * fast: `where` names the instance whose bridge spawned it (INSTANCE, from the service's env) and
 * its pid; `count` counts calls in this process (a session's calls reaching one child count up
 * one by one, whichever instance the client reached); `slow` answers after `ms` milliseconds
 * (and says when it has begun, in a file, for tests that must act while it runs).
 */
import { writeFileSync } from "node:fs";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const server = new McpServer({ name: "counter", version: "1.0.0" }, { capabilities: { logging: {} } });
let calls = 0;

const text = (value) => ({ content: [{ type: "text", text: JSON.stringify(value) }] });

server.registerTool("where", { description: "Which instance spawned this process" }, () =>
  text({ instance: process.env.INSTANCE ?? "", pid: process.pid }),
);
server.registerTool("count", { description: "Counts calls in this process" }, () => {
  calls += 1;
  return text({ calls, instance: process.env.INSTANCE ?? "", pid: process.pid });
});
server.registerTool(
  "slow",
  {
    description: "Answers after ms milliseconds; writes the file `started` (if given) when it begins",
    inputSchema: { ms: z.number().int().min(0).max(60_000), started: z.string().optional() },
  },
  async ({ ms, started }) => {
    if (started) writeFileSync(started, String(process.pid));
    await new Promise((r) => setTimeout(r, ms));
    return text({ slept: ms, instance: process.env.INSTANCE ?? "" });
  },
);

await server.connect(new StdioServerTransport());
