/**
 * The in-the-box services that are off by default (playwright, tmux), switched on in the config
 * and used through the whole gateway: a user logs in, and the MCP SDK client lists tools and makes
 * real calls over the protected endpoint (gateway -> stdio bridge -> @playwright/mcp with the
 * system Chromium / the native tmux server with the system tmux).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyLegacyServiceSwitches } from "../../src/config/load.js";
import { LocalUsers } from "../../src/idp/local.js";
import { builtinServices } from "../../src/services/catalog.js";
import { checkBinary } from "../support/binaries.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { accessTokenFor } from "../support/login.js";

const LOGIN = { username: "olga", password: "optional services password" };
const chromium = checkBinary("/usr/bin/chromium");
const tmux = checkBinary("/usr/bin/tmux");

function text(result: unknown): string {
  return (result as { content: { type: string; text?: string }[] }).content
    .map((c) => c.text ?? "")
    .join("\n");
}

describe.skipIf(!chromium.available && !tmux.available)(
  "optional services, enabled, through the gateway",
  () => {
    // A short data dir: the tmux socket lives in it, and Unix socket paths are limited to 108 bytes.
    const dataDir = mkdtempSync(join(tmpdir(), "mcpgw-opt-"));
    let gw: RunningGateway;
    let page: Server;
    let pageUrl: string;
    let token: string;

    async function connect(name: string): Promise<Client> {
      const client = new Client({ name: "e2e-optional", version: "1.0.0" });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${gw.url}/${name}/mcp`), {
          requestInit: { headers: { authorization: `Bearer ${token}` } },
        }),
      );
      return client;
    }

    beforeAll(async () => {
      page = createServer((_req, res) => {
        res
          .writeHead(200, { "content-type": "text/html" })
          .end("<title>Gateway page</title><h1>Seen through the gateway</h1>");
      });
      await new Promise<void>((r) => page.listen(0, "127.0.0.1", r));
      pageUrl = `http://127.0.0.1:${(page.address() as AddressInfo).port}/`;
      // Switched on the way the README says: the MCP_<SERVICE>_ENABLED variables.
      const tree: Record<string, unknown> = { services: builtinServices(dataDir) };
      applyLegacyServiceSwitches(
        tree,
        { MCP_PLAYWRIGHT_ENABLED: "true", MCP_TMUX_ENABLED: "true" },
        new Set(Object.keys(tree.services as object)),
      );
      const all = tree.services as Record<string, unknown>;
      // Only these two: the default services have their own e2e test.
      const services = { playwright: all.playwright, tmux: all.tmux };
      gw = await startFullGateway({ services }, { dataDir });
      await new LocalUsers(gw.store).add(LOGIN.username, LOGIN.password);
      expect(gw.config.services.playwright?.enabled).toBe(true);
      expect(gw.config.services.tmux?.enabled).toBe(true);
      token = (await accessTokenFor(gw.url, [`${gw.url}/playwright/mcp`, `${gw.url}/tmux/mcp`], LOGIN))
        .accessToken;
    });

    afterAll(async () => {
      await gw?.close();
      await new Promise<void>((r) => (page ? page.close(() => r()) : r()));
      if (tmux.available) {
        try {
          execFileSync("/usr/bin/tmux", ["-S", join(dataDir, "tmux", "tmux.sock"), "kill-server"], {
            stdio: "ignore",
          });
        } catch {
          // No tmux server left: the test killed its session.
        }
      }
      rmSync(dataDir, { recursive: true, force: true });
    });

    it.skipIf(!chromium.available)("playwright: login, tools/list, and a page snapshot", async () => {
      const client = await connect("playwright");
      try {
        expect((await client.listTools()).tools.map((t) => t.name)).toContain("browser_navigate");
        const nav = await client.callTool({ name: "browser_navigate", arguments: { url: pageUrl } });
        expect(nav.isError, text(nav)).toBeFalsy();
        const snap = await client.callTool({ name: "browser_snapshot", arguments: {} });
        expect(text(snap)).toContain('heading "Seen through the gateway"');
      } finally {
        await client.close();
      }
    });

    it.skipIf(!tmux.available)("tmux: login, tools/list, and a command run in a session", async () => {
      const client = await connect("tmux");
      try {
        expect((await client.listTools()).tools.map((t) => t.name)).toContain("capture_pane");
        const created = await client.callTool({
          name: "create_session",
          arguments: { name: "gw", command: "sh" },
        });
        expect(created.isError, text(created)).toBeFalsy();
        await client.callTool({
          name: "send_keys",
          arguments: { session: "gw", keys: "echo through-$((40 + 2))" },
        });
        let pane = "";
        // Only the shell can compute 42; the line may start with its prompt when the keys
        // arrived before the prompt was drawn.
        for (let i = 0; i < 50 && !/through-42$/m.test(pane); i++) {
          await new Promise((r) => setTimeout(r, 100));
          pane = text(await client.callTool({ name: "capture_pane", arguments: { session: "gw" } }));
        }
        expect(pane).toMatch(/through-42$/m);
        expect(
          (await client.callTool({ name: "kill_session", arguments: { session: "gw" } })).isError,
        ).toBeFalsy();
      } finally {
        await client.close();
      }
    });

    it("refuses both services without a token", async () => {
      for (const name of ["playwright", "tmux"]) {
        const res = await fetch(`${gw.url}/${name}/mcp`, { method: "POST", body: "{}" });
        expect(res.status, name).toBe(401);
      }
    });
  },
);
