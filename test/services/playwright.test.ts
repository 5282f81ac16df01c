/**
 * @playwright/mcp from node_modules, as the catalog runs it (system Chromium, headless, launch
 * switches from the config file it writes), through the stdio bridge with the MCP SDK client:
 * it opens a loopback page served here and its accessibility snapshot carries the page's text.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBridge, startBridge } from "../../src/bridge/index.js";
import { configSchema, type ServiceConfig } from "../../src/config/schema.js";
import { builtinServices } from "../../src/services/catalog.js";
import { bridgeOptions } from "../../src/upstreams.js";
import { connectClient } from "../bridge/helpers.js";
import { checkBinary } from "../support/binaries.js";

const chromium = checkBinary("/usr/bin/chromium");

function text(result: unknown): string {
  return (result as { content: { type: string; text?: string }[] }).content
    .map((c) => c.text ?? "")
    .join("\n");
}

describe.skipIf(!chromium.available)("playwright service through the bridge", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "mcpgw-pw-"));
  const requests: string[] = [];
  let page: Server;
  let pageUrl: string;
  let svc: ServiceConfig;
  let bridge: RunningBridge;
  let client: Client;

  beforeAll(async () => {
    page = createServer((req, res) => {
      requests.push(req.url ?? "");
      res
        .writeHead(200, { "content-type": "text/html" })
        .end("<title>Loopback test page</title><h1>Hello from the test page</h1><p>rendered by chromium</p>");
    });
    await new Promise<void>((r) => page.listen(0, "127.0.0.1", r));
    pageUrl = `http://127.0.0.1:${(page.address() as AddressInfo).port}/page`;
    svc = configSchema.parse({ services: builtinServices(dataDir) }).services.playwright as ServiceConfig;
    bridge = await startBridge(bridgeOptions(svc));
    client = await connectClient(bridge.url);
  });

  afterAll(async () => {
    await client?.close();
    await bridge?.close();
    await new Promise<void>((r) => page?.close(() => r()));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("runs from node_modules with this Node, off by default, with the quiet Chromium switches", () => {
    expect(svc.enabled).toBe(false);
    expect(svc.command).toBe(process.execPath);
    expect(svc.args[0]).toMatch(/node_modules\/@playwright\/mcp\/cli\.js$/);
    const configFile = svc.args[svc.args.indexOf("--config") + 1] as string;
    const config = JSON.parse(readFileSync(configFile, "utf8"));
    expect(config.browser.launchOptions).toMatchObject({
      executablePath: "/usr/bin/chromium",
      headless: true,
      chromiumSandbox: false,
    });
    expect(config.browser.launchOptions.args).toEqual(
      expect.arrayContaining([
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
      ]),
    );
  });

  it("lists the browser tools", async () => {
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(["browser_navigate", "browser_snapshot", "browser_click"]));
  });

  it("navigates to a loopback page and snapshots its text", async () => {
    const nav = await client.callTool({ name: "browser_navigate", arguments: { url: pageUrl } });
    expect(nav.isError, text(nav)).toBeFalsy();
    expect(text(nav)).toContain("Page Title: Loopback test page");
    expect(requests).toContain("/page");

    const snap = await client.callTool({ name: "browser_snapshot", arguments: {} });
    expect(snap.isError, text(snap)).toBeFalsy();
    expect(text(snap)).toContain('heading "Hello from the test page"');
    expect(text(snap)).toContain("rendered by chromium");
  });

  it("reports a page that cannot be reached as a tool error", async () => {
    // A port nothing listens on: the server we just closed.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const nav = await client.callTool({
      name: "browser_navigate",
      arguments: { url: `http://127.0.0.1:${port}/` },
    });
    expect(nav.isError).toBe(true);
    expect(text(nav)).toContain("ERR_CONNECTION_REFUSED");
  });
});
