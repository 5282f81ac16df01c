import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterEach, describe, expect, it } from "vitest";
import {
  type CliBridge,
  childrenOf,
  cmdline,
  everything,
  initializeRequest,
  isAlive,
  post,
  startCliBridge,
} from "./helpers.js";

const procs: ChildProcess[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) if (p.exitCode === null) p.kill("SIGKILL");
});

async function startCli(args: string[]): Promise<CliBridge> {
  const started = await startCliBridge(args);
  procs.push(started.proc);
  return started;
}

/** SIGTERM, then the exit code once the process (and so its stderr) is done. */
async function stop(cli: CliBridge): Promise<number | null> {
  cli.proc.kill("SIGTERM");
  const [code] = (await once(cli.proc, "exit")) as [number | null];
  return code;
}

const everythingArgs = ["--", everything.command, ...everything.args];

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

  it("with --auth-token-file: no token or a wrong one is 401, the right one opens a session", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mcpgw-bridge-token-"));
    const file = join(dir, "token");
    const secret = randomBytes(32).toString("base64url");
    writeFileSync(file, `${secret}\n`, { mode: 0o600 });
    try {
      const cli = await startCli(["--port", "0", "--auth-token-file", file, ...everythingArgs]);
      const wrong: Record<string, string>[] = [
        {},
        { authorization: "Bearer not the secret" },
        { authorization: secret },
      ];
      for (const headers of wrong) {
        const refused = await post(cli.url, initializeRequest(1), headers);
        expect(refused.status).toBe(401);
        expect(refused.headers.get("www-authenticate")).toMatch(/^Bearer/);
        expect(await refused.json()).toMatchObject({ jsonrpc: "2.0", error: { code: -32000 } });
      }
      expect(cli.stderr()).not.toContain(secret);
      const client = new Client({ name: "cli-test", version: "1.0.0" });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(cli.url), {
          requestInit: { headers: { authorization: `Bearer ${secret}` } },
        }),
      );
      const result = await client.callTool({ name: "echo", arguments: { message: "with the token" } });
      expect(JSON.stringify(result)).toContain("with the token");
      await client.close();
      expect(await stop(cli)).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses an empty, missing or non-token --auth-token-file with a one-line error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mcpgw-bridge-token-"));
    try {
      writeFileSync(join(dir, "words"), "a passphrase with spaces\n");
      await expect(startCli(["--auth-token-file", join(dir, "words"), ...everythingArgs])).rejects.toThrow(
        /--auth-token-file.*words does not hold a bearer token/,
      );
      writeFileSync(join(dir, "empty"), "\n");
      await expect(startCli(["--auth-token-file", join(dir, "empty"), ...everythingArgs])).rejects.toThrow(
        /--auth-token-file.*empty/,
      );
      await expect(startCli(["--auth-token-file", join(dir, "nope"), ...everythingArgs])).rejects.toThrow(
        /--auth-token-file.*nope/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("warns on stderr when it listens beyond loopback without a token, and not with one", async () => {
    const open = await startCli(["--host", "0.0.0.0", "--port", "0", ...everythingArgs]);
    expect(await stop(open)).toBe(0);
    expect(open.stderr()).toMatch(/warning: .*0\.0\.0\.0.*--auth-token-file/);

    const dir = mkdtempSync(join(tmpdir(), "mcpgw-bridge-token-"));
    try {
      writeFileSync(join(dir, "token"), randomBytes(32).toString("hex"), { mode: 0o600 });
      const guarded = await startCli([
        "--host",
        "0.0.0.0",
        "--port",
        "0",
        "--auth-token-file",
        join(dir, "token"),
        ...everythingArgs,
      ]);
      expect(await stop(guarded)).toBe(0);
      expect(guarded.stderr()).not.toMatch(/warning/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // Loopback without a token is the local default: no warning either.
    const local = await startCli(["--port", "0", ...everythingArgs]);
    expect(await stop(local)).toBe(0);
    expect(local.stderr()).not.toMatch(/warning/);
  });
});
