import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBridge, startBridge } from "../../src/bridge/index.js";
import { configSchema, type ServiceConfig } from "../../src/config/schema.js";
import { builtinServices } from "../../src/services/catalog.js";
import { bridgeOptions } from "../../src/upstreams.js";
import { connectClient } from "../bridge/helpers.js";
import { DEFAULT_SERVICES, serviceCalls, startTestPage } from "../support/service-calls.js";

const dataDir = mkdtempSync(join(tmpdir(), "mcpgw-catalog-"));
let services: Record<string, ServiceConfig>;
let page: Awaited<ReturnType<typeof startTestPage>>;
let calls: ReturnType<typeof serviceCalls>;

beforeAll(async () => {
  const raw = builtinServices(dataDir) as Record<string, Record<string, unknown>>;
  // The test page is on loopback: only this test lets fetch reach it.
  (raw.fetch as { env?: Record<string, string> }).env = { MCP_FETCH_ALLOW_PRIVATE: "1" };
  services = configSchema.parse({ services: raw }).services;
  page = await startTestPage();
  calls = serviceCalls(dataDir, page.url);
});

afterAll(async () => {
  await page.close();
  rmSync(dataDir, { recursive: true, force: true });
});

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
    for (const name of DEFAULT_SERVICES) {
      expect(services[name]?.enabled).toBe(true);
      expect(services[name]?.command).toBe(process.execPath);
    }
  });

  for (const name of DEFAULT_SERVICES) {
    it(`${name}: tools/list and a real call through the bridge`, async () => {
      const svc = services[name] as ServiceConfig;
      let bridge: RunningBridge | undefined;
      let client: Client | undefined;
      try {
        bridge = await startBridge(bridgeOptions(svc));
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
