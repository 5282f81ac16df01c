/**
 * Both protocol eras on every in-the-box service, through the whole gateway: the SDK v2 client
 * in its three negotiation modes (legacy = 2025 sessions, auto = probe then pick, pinned =
 * 2026-07-28 only, stateless) lists tools and makes the same real call per service as the
 * SDK v1 test does. `everything` is the stdio server from npm, bridged by the gateway.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import type { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalUsers } from "../../src/idp/local.js";
import { builtinServices } from "../../src/services/catalog.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { accessTokenFor } from "../support/login.js";
import { DEFAULT_SERVICES, serviceCalls, startTestPage } from "../support/service-calls.js";

const LOGIN = { username: "erin", password: "both eras password" };
const MODES = {
  legacy: "legacy",
  auto: "auto",
  "pinned 2026-07-28": { pin: "2026-07-28" },
} as const;

describe("every service in both protocol eras, SDK v2 client through the gateway", () => {
  let gw: RunningGateway;
  let page: Awaited<ReturnType<typeof startTestPage>>;
  let token: string;

  beforeAll(async () => {
    page = await startTestPage();
    const dataDir = mkdtempSync(join(tmpdir(), "mcpgw-eras-"));
    const services = builtinServices(dataDir) as Record<string, Record<string, unknown>>;
    services.fetch = { ...services.fetch, env: { MCP_FETCH_ALLOW_PRIVATE: "1" } };
    // A 2025-era server of the tests' own that asks its client for input and changes its tools.
    services.asking = {
      title: "Asking (test)",
      command: process.execPath,
      args: ["--import", "tsx", fileURLToPath(new URL("../bridge/asking-server.ts", import.meta.url))],
      enabled: true,
    };
    gw = await startFullGateway({ services }, { dataDir });
    await new LocalUsers(gw.store).add(LOGIN.username, LOGIN.password);
    token = (
      await accessTokenFor(
        gw.url,
        [...DEFAULT_SERVICES, "asking"].map((s) => `${gw.url}/${s}/mcp`),
        LOGIN,
      )
    ).accessToken;
  });
  afterAll(async () => {
    await gw?.close();
    await page?.close();
  });

  for (const [label, mode] of Object.entries(MODES)) {
    for (const name of DEFAULT_SERVICES) {
      it(`${name}, ${label}: tools/list and a real call`, async () => {
        const client = new Client({ name: "eras-e2e", version: "1.0.0" }, { versionNegotiation: { mode } });
        await client.connect(
          new StreamableHTTPClientTransport(new URL(`${gw.url}/${name}/mcp`), {
            requestInit: { headers: { authorization: `Bearer ${token}` } },
          }),
        );
        try {
          // auto picks the current revision whenever the server offers it.
          expect(client.getProtocolEra()).toBe(mode === "legacy" ? "legacy" : "modern");
          expect((await client.listTools()).tools.length).toBeGreaterThan(0);
          // The calls only use callTool, whose shape is the same in both SDKs.
          await serviceCalls(gw.dataDir, page.url)[name]?.(client as unknown as V1Client);
        } finally {
          await client.close();
        }
      });
    }
  }

  it("a pinned 2026-07-28 client answers a bridged 2025 server's elicitation (MRTR) and hears its list change, through the gateway", async () => {
    const client = new Client(
      { name: "eras-mrtr", version: "1.0.0" },
      { capabilities: { elicitation: { form: {} } }, versionNegotiation: { mode: { pin: "2026-07-28" } } },
    );
    client.setRequestHandler("elicitation/create", async () => ({
      action: "accept",
      content: { name: "Ada" },
    }));
    let changes = 0;
    client.setNotificationHandler("notifications/tools/list_changed", () => {
      changes += 1;
    });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${gw.url}/asking/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    try {
      const greeted = await client.callTool({ name: "ask_name", arguments: {} });
      expect((greeted.content as Array<{ text: string }>)[0]?.text).toBe("Hello, Ada!");
      // The listen stream is an SSE answer that stays open through the gateway's proxy.
      const subscription = await client.listen({ toolsListChanged: true });
      await client.callTool({ name: "add_tool", arguments: {} });
      await expect.poll(() => changes, { timeout: 10_000 }).toBe(1);
      await subscription.close();
    } finally {
      await client.close();
    }
  }, 60_000);
});
