/**
 * Runs the built `mcp-gateway` CLI as a real child process with its own credentials directory,
 * collecting stdout and stderr. Asynchronous on purpose: the gateway under test runs in this
 * process and must keep answering while the child talks to it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";

export const BIN = resolve("bin/mcp-gateway.js");
/** The CLI runs from dist/: `npm run build` first. */
export const BUILT = existsSync(resolve("dist/cli/main.js"));

/** This environment minus the gateway's own variables, plus the credentials directory. */
export function cliEnv(clientDir: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(MCP_|GITHUB_|REDIS_|XDG_CONFIG_HOME)/.test(k)) env[k] = v;
  }
  env.MCP_GATEWAY_CLIENT_DIR = clientDir;
  return env;
}

export interface CliRun {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

export function startCli(args: string[], clientDir: string): CliRun {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: cliEnv(clientDir),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once("close", (code) => r(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Runs to completion. */
export async function runCli(
  args: string[],
  clientDir: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = startCli(args, clientDir);
  const code = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/** Waits until `login` has printed the authorization URL on stderr, and returns it. */
export async function authorizationUrlOf(run: CliRun, timeoutMs = 10_000): Promise<URL> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = /^\s+(http\S+\/authorize\?\S+)$/m.exec(run.stderr());
    if (match?.[1]) return new URL(match[1]);
    if (run.child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`no authorization URL from login: ${run.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
