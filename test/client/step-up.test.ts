/**
 * Step-up authorization through `connect` (MCP authorization, scope challenges; RFC 6750 §3.1
 * `insufficient_scope`): a scenario MCP server that answers 403 with `scope=` until the token
 * carries it. `connect` asks again for the union of what it holds and what the server named,
 * says on stderr that a browser is needed and where to go, retries the request once the person
 * approved, and gives up (with a JSON-RPC error naming the scope) after a bounded number of
 * tries or when nobody comes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authorizationUrlIn, BIN, BUILT, cliEnv } from "./cli-process.js";
import { loginApproving } from "./scenario/login-flow.js";
import { legacyHandler, modernHandler } from "./scenario/mcp-servers.js";
import { approveInBrowser, type Scenario, startScenario } from "./scenario/oauth-scenario.js";

const run = BUILT || process.env.CI === "true";
if (!run) console.warn("skipping test/client/step-up.test.ts: run `npm run build` first");

const RESOURCE = {
  scopesSupported: ["mcp:read"],
  requiredScopes: ["mcp:read"],
  toolScopes: { echo: ["mcp:read", "mcp:write"] },
};

/** A stdio MCP client running `mcp-gateway connect URL ...flags`, with its stderr collected. */
async function connectClient(url: string, dir: string, flags: string[] = []) {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, "connect", url, ...flags],
    env: cliEnv(dir),
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const client = new Client({ name: "step-up-test", version: "1.0.0" });
  await client.connect(transport);
  return { client, stderr: () => stderr, alive: () => transport.pid !== null };
}

describe.skipIf(!run)("connect re-authorizes on 403 insufficient_scope", () => {
  let root: string;
  const scenarios: Scenario[] = [];
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "mcpgw-step-up-"));
  });
  afterAll(async () => {
    for (const s of scenarios) await s.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("asks for the union of scopes, says so on stderr, and retries the call (2025 server)", async () => {
    const s = await startScenario(
      { as1: { advertiseIss: true, scopesSupported: ["mcp:read", "mcp:write"] } },
      legacyHandler(),
      RESOURCE,
    );
    scenarios.push(s);
    const dir = join(root, "union");
    const login = await loginApproving(s.mcpUrl, dir);
    expect(login.code).toBe(0);
    expect(login.authorizationUrl.searchParams.get("scope")).toBe("mcp:read");

    const { client, stderr, alive } = await connectClient(s.mcpUrl, dir, ["--no-browser"]);
    try {
      // Reading needs only what the login got.
      expect((await client.listTools()).tools.map((t) => t.name)).toContain("echo");
      const call = client.callTool({ name: "echo", arguments: { text: "written" } });
      const url = await authorizationUrlIn(stderr, alive);
      expect(stderr()).toContain("mcp:write");
      expect(url.searchParams.get("scope")?.split(" ").sort()).toEqual(["mcp:read", "mcp:write"]);
      await approveInBrowser(url);
      const result = await call;
      expect((result.content as Array<{ text: string }>)[0]?.text).toBe("written");
      // Still able to read afterwards: the new token kept the old scope.
      expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    } finally {
      await client.close();
    }
    expect(s.as.as1?.authorizeRequests).toHaveLength(2);
  });

  it("gives up after one re-authorization when the server still refuses (no loop; 2026 server)", async () => {
    const s = await startScenario(
      // This server never grants mcp:write.
      { as1: { advertiseIss: true, grantScopes: (r) => r.filter((x) => x !== "mcp:write") } },
      modernHandler(),
      RESOURCE,
    );
    scenarios.push(s);
    const dir = join(root, "bounded");
    expect((await loginApproving(s.mcpUrl, dir)).code).toBe(0);
    const { client, stderr, alive } = await connectClient(s.mcpUrl, dir, ["--no-browser"]);
    try {
      const call = client.callTool({ name: "echo", arguments: { text: "x" } });
      const outcome = call.then(
        () => "resolved",
        (err: Error) => err.message,
      );
      await approveInBrowser(await authorizationUrlIn(stderr, alive));
      const message = await outcome;
      expect(message).toContain("mcp:write");
      // The relay still works for what the login allows.
      expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    } finally {
      await client.close();
    }
    expect(s.as.as1?.authorizeRequests).toHaveLength(2);
  });

  it("when nobody opens the URL, the call fails after --login-timeout instead of hanging", async () => {
    const s = await startScenario({ as1: { advertiseIss: true } }, modernHandler(), RESOURCE);
    scenarios.push(s);
    const dir = join(root, "nobody");
    expect((await loginApproving(s.mcpUrl, dir)).code).toBe(0);
    const { client, stderr } = await connectClient(s.mcpUrl, dir, ["--no-browser", "--login-timeout", "2s"]);
    try {
      const err = await client.callTool({ name: "echo", arguments: { text: "x" } }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.message).toContain("mcp:write");
      expect(err?.message).toContain(`mcp-gateway login ${s.mcpUrl}`);
      expect(stderr()).toContain("needs a browser");
    } finally {
      await client.close();
    }
  });
});
