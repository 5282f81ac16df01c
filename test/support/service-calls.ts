/**
 * One real call per in-the-box service, each with a check on its result: shared by the bridge
 * catalog test and the end-to-end test through the gateway.
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { expect } from "vitest";

function text(result: unknown): string {
  return JSON.stringify((result as { content: unknown }).content);
}

/** A loopback page for the fetch service (which must be allowed private addresses to reach it). */
export async function startTestPage(): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.url === "/robots.txt") res.writeHead(404).end();
    else
      res.writeHead(200, { "content-type": "text/html" }).end("<h2>Catalog page</h2><p>served locally</p>");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    server,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** The services that are on by default, in the order the tests call them. */
export const DEFAULT_SERVICES = [
  "everything",
  "filesystem",
  "memory",
  "sequential-thinking",
  "time",
  "fetch",
] as const;

export function serviceCalls(
  dataDir: string,
  pageUrl: string,
): Record<string, (client: Client) => Promise<void>> {
  return {
    everything: async (c) => {
      expect(text(await c.callTool({ name: "echo", arguments: { message: "in the box" } }))).toContain(
        "in the box",
      );
    },
    filesystem: async (c) => {
      const path = join(dataDir, "workspace", "note.txt");
      await c.callTool({ name: "write_file", arguments: { path, content: "written through the bridge" } });
      expect(readFileSync(path, "utf8")).toBe("written through the bridge");
      const outside = await c.callTool({ name: "read_text_file", arguments: { path: "/etc/hostname" } });
      expect(outside.isError).toBe(true);
    },
    memory: async (c) => {
      await c.callTool({
        name: "create_entities",
        arguments: {
          entities: [{ name: "Gateway", entityType: "software", observations: ["bridges stdio"] }],
        },
      });
      expect(text(await c.callTool({ name: "read_graph", arguments: {} }))).toContain("bridges stdio");
      expect(readFileSync(join(dataDir, "memory.jsonl"), "utf8")).toContain("Gateway");
    },
    "sequential-thinking": async (c) => {
      const result = await c.callTool({
        name: "sequentialthinking",
        arguments: { thought: "first", nextThoughtNeeded: false, thoughtNumber: 1, totalThoughts: 1 },
      });
      expect(text(result)).toContain("thoughtNumber");
    },
    time: async (c) => {
      const result = await c.callTool({ name: "get_current_time", arguments: { timezone: "Asia/Tokyo" } });
      expect((result.structuredContent as { datetime: string }).datetime).toMatch(/\+09:00$/);
    },
    fetch: async (c) => {
      expect(text(await c.callTool({ name: "fetch", arguments: { url: pageUrl } }))).toContain(
        "## Catalog page",
      );
    },
  };
}
