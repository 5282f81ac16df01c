/** Shared pieces of the bridge tests: the everything server, SDK clients, the process table. */
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterEach } from "vitest";
import { type BridgeOptions, type RunningBridge, startBridge } from "../../src/bridge/index.js";

const require = createRequire(import.meta.url);

/** The official "everything" MCP server's stdio entry, run with this Node. */
export const everything = {
  command: process.execPath,
  args: [require.resolve("@modelcontextprotocol/server-everything/dist/index.js"), "stdio"],
};

export interface LogLine {
  level: "info" | "warn" | "error";
  obj: Record<string, unknown>;
  msg?: string;
}

/** A bridge on the everything server, with a logger that records what it was told. */
export async function everythingBridge(
  overrides: Partial<BridgeOptions> = {},
): Promise<{ bridge: RunningBridge; logs: LogLine[] }> {
  const logs: LogLine[] = [];
  const record = (level: LogLine["level"]) => (obj: object, msg?: string) =>
    logs.push({ level, obj: obj as Record<string, unknown>, msg });
  const bridge = await startBridge({
    ...everything,
    env: {},
    sessionMode: "per-session",
    maxSessions: 10,
    idleTimeoutSeconds: 600,
    requestTimeoutSeconds: 30,
    logger: { info: record("info"), warn: record("warn"), error: record("error") },
    ...overrides,
  });
  return { bridge, logs };
}

/** An SDK client connected to `url` (optionally advertising sampling). */
export async function connectClient(
  url: string,
  capabilities: Record<string, unknown> = {},
): Promise<Client> {
  const client = new Client({ name: "bridge-test", version: "1.0.0" }, { capabilities });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

/** Whether a process exists (and is not a zombie). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Live processes whose parent is `ppid`, read from /proc. */
export function childrenOf(ppid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === ppid && fields[0] !== "Z") pids.push(Number(name));
    } catch {
      // Exited while we looked.
    }
  }
  return pids;
}

/** Poll until `check` holds or the time is up. */
export async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Raw JSON-RPC POST to the bridge. */
export async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...headers,
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** An initialize request for raw tests. */
export function initializeRequest(id: number | string, protocolVersion = "2025-06-18") {
  return {
    jsonrpc: "2.0",
    id,
    method: "initialize",
    params: { protocolVersion, capabilities: {}, clientInfo: { name: "raw", version: "0" } },
  };
}

/**
 * What a bridge test opens, closed after each test: its SDK clients first, then its bridge.
 * Call once per file at top level; tests assign `open.bridge` and push to `open.clients`.
 */
export function closedAfterEach(): { bridge: RunningBridge | undefined; clients: Client[] } {
  const open = { bridge: undefined as RunningBridge | undefined, clients: [] as Client[] };
  afterEach(async () => {
    for (const c of open.clients.splice(0)) await c.close().catch(() => {});
    await open.bridge?.close();
    open.bridge = undefined;
  });
  return open;
}

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

/** The command line of a process, NUL-separated ("" once it is gone). */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return "";
  }
}

/** `mcp-gateway bridge ARGS…` as a process; resolves with the URL it prints on stdout. */
export interface CliBridge {
  url: string;
  proc: ChildProcess;
  /** Everything written on stderr so far. */
  stderr(): string;
}

/** Starts the bridge CLI; rejects with its stderr if it exits before printing its URL. */
export function startCliBridge(args: string[]): Promise<CliBridge> {
  const proc = spawn(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "-e", driver, "bridge", ...args],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  proc.stderr?.on("data", (d) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    proc.stdout?.once("data", (d: Buffer) =>
      resolve({ url: d.toString().trim(), proc, stderr: () => stderr }),
    );
    proc.once("exit", (code) => reject(new Error(`bridge exited with ${code}: ${stderr}`)));
  });
}
