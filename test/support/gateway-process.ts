/**
 * The gateway as its own process: `mcp-gateway serve` (the built CLI, dist/) with a config file
 * written from a config tree, on a free port. Several of them may share one data dir, and so
 * one SQLite file, as processes on one host do.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "./upstream.js";

const BIN = resolve("bin/mcp-gateway.js");
/** The CLI runs from dist/: `npm run build` first (CI does). */
export const CLI_BUILT = existsSync(resolve("dist/cli/main.js"));

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

export interface GatewayProcess {
  url: string;
  port: number;
  pid: number;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/** The gateway must not pick up this machine's MCP_* or legacy variables. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (
      !/^(MCP_|GITHUB_|REDIS_|BASE_DOMAIN|ALLOWED_GITHUB_USERS|CLIENT_LIFETIME|ACCESS_TOKEN|REFRESH_TOKEN)/.test(
        k,
      )
    )
      env[k] = v;
  }
  return env;
}

/** Starts `serve` with `tree` as its config file (on a free port unless it names one); resolves once it listens. */
export async function startGatewayProcess(tree: Record<string, unknown>): Promise<GatewayProcess> {
  const port = typeof tree.port === "number" ? tree.port : await freePort();
  const dir = mkdtempSync(join(tmpdir(), "mcpgw-proc-"));
  const file = join(dir, "gateway.yaml");
  // JSON is YAML.
  writeFileSync(file, JSON.stringify({ log_level: "warn", ...tree, port }));
  const child: ChildProcess = spawn(process.execPath, [BIN, "serve", "--config", file, "--no-builtins"], {
    cwd: dir,
    env: cleanEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  child.once("exit", () => running.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // A test run that dies must not leave gateways listening.
    process.once("exit", () => {
      for (const c of running) c.kill("SIGKILL");
    });
  }
  let out = "";
  await new Promise<void>((ready, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`gateway process did not listen in 20 s: ${out}`)),
      20_000,
    );
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes("listening on")) {
        clearTimeout(timer);
        ready();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway process exited (${code}): ${out}`));
    });
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid as number,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
