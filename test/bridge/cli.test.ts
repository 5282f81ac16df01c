import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterEach, describe, expect, it } from "vitest";
import { childrenOf, everything, isAlive } from "./helpers.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
/** A stand-in for the CLI's main: only the bridge command, run from source. */
const driver = `
import { Command } from "commander";
import { registerBridgeCommand } from "./src/cli/bridge.ts";
const program = new Command("mcp-gateway");
registerBridgeCommand(program);
// With -e there is no script path in argv: everything after node is user input.
await program.parseAsync(process.argv.slice(1), { from: "user" });
`;

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return "";
  }
}

let proc: ChildProcess | undefined;
afterEach(() => {
  if (proc?.exitCode === null) proc.kill("SIGKILL");
});

function startCli(args: string[]): Promise<{ url: string; proc: ChildProcess }> {
  proc = spawn(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "-e", driver, "bridge", ...args],
    {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const started = proc;
  let stderr = "";
  started.stderr?.on("data", (d) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    started.stdout?.once("data", (d: Buffer) => resolve({ url: d.toString().trim(), proc: started }));
    started.once("exit", (code) => reject(new Error(`bridge exited with ${code}: ${stderr}`)));
  });
}

describe("mcp-gateway bridge", () => {
  it("serves a stdio server, and SIGTERM leaves no child process behind", async () => {
    const { url, proc: cli } = await startCli([
      "--port",
      "0",
      "--mode",
      "per-session",
      "--",
      ...[everything.command, ...everything.args],
    ]);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    const clients = await Promise.all(
      [1, 2].map(async () => {
        const client = new Client({ name: "cli-test", version: "1.0.0" });
        await client.connect(new StreamableHTTPClientTransport(new URL(url)));
        return client;
      }),
    );
    const result = await clients[0]?.callTool({ name: "echo", arguments: { message: "via cli" } });
    expect(JSON.stringify(result)).toContain("via cli");
    // Only the MCP servers: tsx may have an esbuild helper process of its own.
    const kids = childrenOf(cli.pid as number).filter((pid) => cmdline(pid).includes("server-everything"));
    expect(kids).toHaveLength(2);
    cli.kill("SIGTERM");
    const [code] = await once(cli, "exit");
    expect(code).toBe(0);
    for (const pid of kids) expect(isAlive(pid)).toBe(false);
    for (const c of clients) await c.close().catch(() => {});
  });

  it("rejects a bad option with a one-line error", async () => {
    await expect(startCli(["--mode", "sometimes", "--", "true"])).rejects.toThrow(
      /--mode.*sometimes.*per-session, shared/s,
    );
  });
});
