/**
 * Every in-the-box service through the whole gateway: a user logs in, gets a token for the
 * services, and the MCP SDK client lists tools and makes one real call per service over the
 * protected endpoint (gateway -> stdio bridge -> the real server from npm or src/services).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalUsers } from "../../src/idp/local.js";
import { builtinServices } from "../../src/services/catalog.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { accessTokenFor } from "../support/login.js";
import { DEFAULT_SERVICES, serviceCalls, startTestPage } from "../support/service-calls.js";

const LOGIN = { username: "frank", password: "services password" };

describe("services in the box, through the gateway", () => {
  let gw: RunningGateway;
  let page: Awaited<ReturnType<typeof startTestPage>>;
  let token: string;

  beforeAll(async () => {
    page = await startTestPage();
    const dataDir = mkdtempSync(join(tmpdir(), "mcpgw-svc-"));
    const services = builtinServices(dataDir) as Record<string, Record<string, unknown>>;
    // Only here may fetch reach a loopback page; the SSRF tests run with this off.
    services.fetch = { ...services.fetch, env: { MCP_FETCH_ALLOW_PRIVATE: "1" } };
    gw = await startFullGateway({ services }, { dataDir });
    await new LocalUsers(gw.store).add(LOGIN.username, LOGIN.password);
    token = (
      await accessTokenFor(
        gw.url,
        DEFAULT_SERVICES.map((s) => `${gw.url}/${s}/mcp`),
        LOGIN,
      )
    ).accessToken;
  });
  afterAll(async () => {
    await gw?.close();
    await page?.close();
  });

  for (const name of DEFAULT_SERVICES) {
    it(`${name}: login, tools/list and a real call`, async () => {
      const client = new Client({ name: "e2e", version: "1.0.0" });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${gw.url}/${name}/mcp`), {
          requestInit: { headers: { authorization: `Bearer ${token}` } },
        }),
      );
      try {
        expect((await client.listTools()).tools.length).toBeGreaterThan(0);
        await serviceCalls(gw.dataDir, page.url)[name]?.(client);
      } finally {
        await client.close();
      }
    });
  }

  it("refuses the services without a token", async () => {
    const res = await fetch(`${gw.url}/time/mcp`, { method: "POST", body: "{}" });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain(
      `resource_metadata="${gw.url}/.well-known/oauth-protected-resource/time/mcp"`,
    );
  });
});
