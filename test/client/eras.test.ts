/**
 * `connect` between stdio MCP clients and remote MCP servers of both protocol eras, all real:
 * a 2026-07-28 stateless server (SDK v2 `createMcpHandler`, modern only) and a 2025-11-25
 * server with sessions (SDK v2 streamable HTTP transport), each behind a scenario OAuth server;
 * on the stdio side a 2025-era client (SDK v1, as desktop apps are today) and a 2026-era
 * client (SDK v2 with version negotiation `auto`). Both directions: calls out, and what the
 * server asks of the client (elicitation, roots: server-to-client requests in 2025,
 * `input_required` results in 2026), plus progress notifications on the wire.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client as V2Client } from "@modelcontextprotocol/client";
import { StdioClientTransport as V2StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ElicitRequestSchema, ListRootsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, BUILT, cliEnv } from "./cli-process.js";
import { loginApproving } from "./scenario/login-flow.js";
import { legacyHandler, modernHandler } from "./scenario/mcp-servers.js";
import { type Scenario, startScenario } from "./scenario/oauth-scenario.js";

const run = BUILT || process.env.CI === "true";
if (!run) console.warn("skipping test/client/eras.test.ts: run `npm run build` first");

const INIT = { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ROOTS = [{ uri: "file:///work/project", name: "project" }];
const textOf = (result: unknown) =>
  ((result as { content?: Array<{ text: string }> }).content ?? [])[0]?.text;

const eras = [
  {
    era: "2026-07-28 (stateless)",
    handler: modernHandler,
    serverName: "modern-upstream",
    header: "2026-07-28",
    // A 2026 stdio client is relayed untouched: it speaks 2026-07-28 through connect.
    stdioEra: "modern",
  },
  {
    era: "2025-11-25 (sessions)",
    handler: legacyHandler,
    serverName: "legacy-upstream",
    header: "2025-11-25",
    // connect answers its server/discover so that it falls back to initialize.
    stdioEra: "legacy",
  },
] as const;

describe.skipIf(!run)("connect relays to servers of both protocol eras", () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "mcpgw-eras-"));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  for (const { era, handler, serverName, header, stdioEra } of eras) {
    describe(`a ${era} server`, () => {
      let s: Scenario;
      let dir: string;
      beforeAll(async () => {
        s = await startScenario({ as1: { advertiseIss: true } }, handler());
        dir = join(root, serverName);
        const login = await loginApproving(s.mcpUrl, dir);
        if (login.code !== 0) throw new Error(`login failed: ${login.run.stderr()}`);
      });
      afterAll(async () => {
        await s?.close();
      });

      it("from a 2025-era stdio client: tools, elicitation and roots, both ways", async () => {
        const client = new Client(
          { name: "desktop-app", version: "1.0.0" },
          { capabilities: { elicitation: {}, roots: { listChanged: true } } },
        );
        client.setRequestHandler(ElicitRequestSchema, () => ({ action: "accept", content: { name: "Ada" } }));
        client.setRequestHandler(ListRootsRequestSchema, () => ({ roots: ROOTS }));
        const transport = new StdioClientTransport({
          command: process.execPath,
          args: [BIN, "connect", s.mcpUrl],
          env: cliEnv(dir),
          stderr: "pipe",
        });
        let stderr = "";
        transport.stderr?.on("data", (d: Buffer) => {
          stderr += d.toString();
        });
        try {
          await client.connect(transport);
          expect(client.getServerVersion()?.name).toBe(serverName);
          const tools = await client.listTools();
          expect(tools.tools.map((t) => t.name).sort()).toEqual([
            "ask",
            "echo",
            "progress",
            "roots",
            "whoami",
          ]);
          expect(textOf(await client.callTool({ name: "echo", arguments: { text: "hi" } }))).toBe("hi");
          // The remote side spoke the server's own era.
          expect(textOf(await client.callTool({ name: "whoami" }))).toBe(header);
          expect(textOf(await client.callTool({ name: "ask" }))).toBe("hello Ada");
          expect(JSON.parse(textOf(await client.callTool({ name: "roots" })) ?? "null")).toEqual(ROOTS);
          // A JSON-RPC error from the server comes back as one.
          await expect(client.callTool({ name: "echo", arguments: { text: 42 } })).resolves.toMatchObject({
            isError: true,
          });
        } finally {
          await client.close();
        }
        expect(stderr).not.toContain("Error");
      });

      it("progress notifications keep the stdio client's token and come before the answer, on the wire", async () => {
        // Raw lines, not an SDK client: the v1 client drops progress that shares a read with
        // the final answer (its notification handlers run a microtask after its responses).
        const child = spawn(process.execPath, [BIN, "connect", s.mcpUrl], {
          env: cliEnv(dir),
          stdio: ["pipe", "pipe", "pipe"],
        });
        const lines: Array<Record<string, unknown>> = [];
        let buffer = "";
        child.stdout.on("data", (d: Buffer) => {
          buffer += d.toString();
          const parts = buffer.split("\n");
          buffer = parts.pop() ?? "";
          for (const line of parts.filter(Boolean)) lines.push(JSON.parse(line));
        });
        const send = (m: unknown) => child.stdin.write(`${JSON.stringify(m)}\n`);
        const answerTo = async (id: number) => {
          for (let i = 0; i < 400 && !lines.some((l) => l.id === id); i++) await sleep(25);
          return lines.find((l) => l.id === id);
        };
        try {
          send({ jsonrpc: "2.0", id: 1, method: "initialize", params: INIT });
          expect(await answerTo(1)).toMatchObject({ result: { serverInfo: { name: serverName } } });
          send({ jsonrpc: "2.0", method: "notifications/initialized" });
          send({
            jsonrpc: "2.0",
            id: 2,
            method: "tools/call",
            params: { name: "progress", arguments: { n: 3 }, _meta: { progressToken: "my-token" } },
          });
          expect(await answerTo(2)).toMatchObject({ result: { content: [{ text: "done" }] } });
          const upToAnswer = lines.slice(
            0,
            lines.findIndex((l) => l.id === 2),
          );
          const progress = upToAnswer.filter((l) => l.method === "notifications/progress");
          expect(progress.map((p) => p.params)).toEqual(
            [1, 2, 3].map((n) => ({ progress: n, total: 3, progressToken: "my-token" })),
          );
        } finally {
          child.stdin.end();
          await new Promise((r) => child.once("close", r));
        }
      });

      it("from a 2026-era stdio client negotiating auto", async () => {
        const client = new V2Client(
          { name: "modern-app", version: "2.0.0" },
          { capabilities: { elicitation: {}, roots: {} }, versionNegotiation: { mode: "auto" } },
        );
        client.setRequestHandler("elicitation/create", async () => ({
          action: "accept",
          content: { name: "Grace" },
        }));
        client.setRequestHandler("roots/list", async () => ({ roots: ROOTS }));
        const transport = new V2StdioClientTransport({
          command: process.execPath,
          args: [BIN, "connect", s.mcpUrl],
          env: cliEnv(dir),
          stderr: "pipe",
        });
        try {
          await client.connect(transport);
          expect(client.getProtocolEra()).toBe(stdioEra);
          expect(client.getServerVersion()?.name).toBe(serverName);
          expect(textOf(await client.callTool({ name: "echo", arguments: { text: "hey" } }))).toBe("hey");
          expect(textOf(await client.callTool({ name: "whoami" }))).toBe(header);
          expect(textOf(await client.callTool({ name: "ask" }))).toBe("hello Grace");
          expect(JSON.parse(textOf(await client.callTool({ name: "roots" })) ?? "null")).toEqual(ROOTS);
        } finally {
          await client.close();
        }
      });
    });
  }
});
