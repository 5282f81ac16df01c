/**
 * The client CLI against a gateway at a sub-path (`public_url: http://host/gw/`, behind nginx with
 * README's block): `mcp-gateway login` discovers the prefixed issuer, runs the browser flow through
 * the prefixed pages back to its loopback receiver, and `mcp-gateway connect` then relays a stdio
 * MCP client's tool call to the service. The built CLI as a child process, a real nginx.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addLocalUser, LOGIN } from "../oauth/helpers.js";
import { checkBinary } from "../support/binaries.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { Browser, followAuthorization } from "../support/oauth-client.js";
import { prefixNginxConf } from "../support/prefix-nginx.js";
import { NGINX, type RunningProxy, startNginxWith } from "../support/proxies.js";
import { freePort, startUpstream, type TestUpstream } from "../support/upstream.js";
import { authorizationUrlOf, BIN, BUILT, cliEnv, startCli } from "./cli-process.js";

const CAN_RUN = BUILT && checkBinary(NGINX).available;

describe.skipIf(!CAN_RUN && process.env.CI !== "true")(
  "mcp-gateway login / connect against public_url with a path (run `npm run build` first)",
  () => {
    let upstream: TestUpstream;
    let gw: RunningGateway;
    let proxy: RunningProxy;
    let base: string;
    let clientDir: string;

    beforeAll(async () => {
      const port = await freePort();
      base = `http://127.0.0.1:${port}/gw`;
      upstream = await startUpstream();
      gw = await startFullGateway({ public_url: `${base}/`, services: { notes: { url: upstream.url } } });
      await addLocalUser(gw);
      proxy = await startNginxWith(prefixNginxConf(), { PORT: port, GATEWAY: gw.url });
      clientDir = join(mkdtempSync(join(tmpdir(), "mcpgw-prefix-cli-")), "creds");
    }, 120_000);
    afterAll(async () => {
      await proxy?.close();
      await gw?.close({ wipe: true });
      await upstream?.close();
      if (clientDir) rmSync(join(clientDir, ".."), { recursive: true, force: true });
    });

    it("login through the prefixed pages, then a tool call through connect", async () => {
      const serviceUrl = `${base}/notes/mcp`;
      const run = startCli(["login", serviceUrl, "--no-browser", "--timeout", "30s"], clientDir);
      const authorizationUrl = await authorizationUrlOf(run);
      // The authorization endpoint the CLI found is the prefixed issuer's.
      expect(authorizationUrl.toString().startsWith(`${base}/`)).toBe(true);
      const browser = new Browser();
      const back = await followAuthorization(base, browser, authorizationUrl.toString(), LOGIN);
      await browser.get(back.toString());
      expect({ code: await run.exited, stderr: run.stderr() }).toMatchObject({ code: 0 });

      const client = new Client({ name: "stdio-only-client", version: "1.0.0" });
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: [BIN, "connect", serviceUrl],
        env: cliEnv(clientDir),
        stderr: "pipe",
      });
      await client.connect(transport);
      try {
        const whoami = await client.callTool({ name: "whoami" });
        const headers = JSON.parse((whoami.content as Array<{ text: string }>)[0]?.text ?? "{}") as Record<
          string,
          string
        >;
        expect(headers["x-user-name"]).toBe(LOGIN.username);
        expect(headers.authorization).toBeUndefined();
      } finally {
        await client.close();
      }
    }, 120_000);
  },
);
