import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBridge, startBridge } from "../../src/bridge/index.js";
import { configSchema, type ServiceConfig } from "../../src/config/schema.js";
import { builtinServices } from "../../src/services/catalog.js";
import { connectClient } from "../bridge/helpers.js";

const dataDir = mkdtempSync(join(tmpdir(), "mcpgw-catalog-"));
let services: Record<string, ServiceConfig>;
let page: Server;
let pageUrl: string;

beforeAll(async () => {
  const raw = builtinServices(dataDir) as Record<string, Record<string, unknown>>;
  // The test page is on loopback: only this test lets fetch reach it.
  (raw.fetch as { env?: Record<string, string> }).env = { MCP_FETCH_ALLOW_PRIVATE: "1" };
  services = configSchema.parse({ services: raw }).services;
  page = createServer((req, res) => {
    if (req.url === "/robots.txt") res.writeHead(404).end();
    else
      res.writeHead(200, { "content-type": "text/html" }).end("<h2>Catalog page</h2><p>served locally</p>");
  });
  await new Promise<void>((r) => page.listen(0, "127.0.0.1", r));
  pageUrl = `http://127.0.0.1:${(page.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await new Promise((r) => page.close(r));
  rmSync(dataDir, { recursive: true, force: true });
});

function text(result: unknown): string {
  return JSON.stringify((result as { content: unknown }).content);
}

/** One real call per service, with a check on its result. */
const calls: Record<string, (client: Client) => Promise<void>> = {
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
      arguments: { entities: [{ name: "Gateway", entityType: "software", observations: ["bridges stdio"] }] },
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

describe("built-in services", () => {
  it("is a valid services tree with the expected defaults", () => {
    expect(Object.keys(services).sort()).toEqual(
      [
        "everything",
        "fetch",
        "filesystem",
        "memory",
        "playwright",
        "sequential-thinking",
        "time",
        "tmux",
      ].sort(),
    );
    expect(services.playwright?.enabled).toBe(false);
    expect(services.tmux?.enabled).toBe(false);
    expect(existsSync(join(dataDir, "workspace"))).toBe(true);
    expect(services.memory?.env.MEMORY_FILE_PATH).toBe(join(dataDir, "memory.jsonl"));
    for (const name of Object.keys(calls)) {
      expect(services[name]?.enabled).toBe(true);
      expect(services[name]?.command).toBe(process.execPath);
    }
  });

  for (const name of Object.keys(calls)) {
    it(`${name}: tools/list and a real call through the bridge`, async () => {
      const svc = services[name] as ServiceConfig;
      let bridge: RunningBridge | undefined;
      let client: Client | undefined;
      try {
        bridge = await startBridge({
          command: svc.command as string,
          args: svc.args,
          env: svc.env,
          cwd: svc.cwd,
          sessionMode: svc.session_mode,
          maxSessions: svc.max_sessions,
          idleTimeoutSeconds: svc.idle_timeout,
          requestTimeoutSeconds: svc.request_timeout,
        });
        client = await connectClient(bridge.url);
        expect((await client.listTools()).tools.length).toBeGreaterThan(0);
        await calls[name]?.(client);
      } finally {
        await client?.close();
        await bridge?.close();
      }
    });
  }
});
