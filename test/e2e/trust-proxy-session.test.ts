/**
 * A gateway behind a proxy (`trust_proxy` set, as compose.yaml sets it) with request logging
 * on: an MCP session on a bridged service must not take the process down. The 202 answer to a
 * notification is written after the request's socket is gone, and the log line's client address
 * (fastify's `request.ip`, which with trust_proxy walks the forwarding chain from the socket)
 * threw a TypeError out of the onResponse hook: uncaught, the end of the process. Found by
 * test/e2e/compose-on-host.test.ts; here on its own, in-process, where vitest reports the
 * uncaught error and fails the run.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { expect, it } from "vitest";
import { LocalUsers } from "../../src/idp/local.js";
import { builtinServices } from "../../src/services/catalog.js";
import { startFullGateway } from "../support/full-gateway.js";
import { accessTokenFor } from "../support/login.js";

const LOGIN = { username: "proxied", password: "proxied password" };

it.each([{ trust_proxy: false }, { trust_proxy: "127.0.0.1" }])(
  "trust_proxy $trust_proxy: an MCP session on a bridged service, every request logged",
  async ({ trust_proxy }) => {
    const dataDir = mkdtempSync(join(tmpdir(), "mcpgw-trust-"));
    const { time } = builtinServices(dataDir) as Record<string, unknown>;
    const lines: string[] = [];
    const gw = await startFullGateway(
      { services: { time }, trust_proxy, log_level: "info" },
      { dataDir, logLines: lines },
    );
    try {
      await new LocalUsers(gw.store).add(LOGIN.username, LOGIN.password);
      const { accessToken } = await accessTokenFor(gw.url, [`${gw.url}/time/mcp`], LOGIN);
      const client = new Client({ name: "behind-a-proxy", version: "1.0.0" });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${gw.url}/time/mcp`), {
          requestInit: {
            headers: { authorization: `Bearer ${accessToken}`, "x-forwarded-for": "198.51.100.7" },
          },
        }),
      );
      const result = await client.callTool({ name: "get_current_time", arguments: { timezone: "UTC" } });
      expect(result.isError).toBeFalsy();
      await client.close();
      const mcpLines = lines.filter((l) => l.includes('"path":"/time/mcp"'));
      expect(mcpLines.length).toBeGreaterThan(2);
      // Every line names the client, though by the time a bridged answer is complete its
      // socket may be gone: the address was decided when the request arrived.
      const clientIp = trust_proxy ? "198.51.100.7" : "127.0.0.1";
      for (const line of mcpLines) expect(JSON.parse(line).req.ip).toBe(clientIp);
    } finally {
      await gw.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
);
