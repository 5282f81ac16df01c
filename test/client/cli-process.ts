/**
 * Runs the built `mcp-gateway` CLI as a real child process with its own credentials directory
 * (and its own HOME, so nothing reaches the real user's files), collecting stdout and stderr.
 * Asynchronous on purpose: the gateway under test runs in this process and must keep
 * answering while the child talks to it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";

export const BIN = resolve("bin/mcp-gateway.js");
/** The CLI runs from dist/: `npm run build` first. */
export const BUILT = existsSync(resolve("dist/cli/main.js"));

/**
 * This environment minus the gateway's own variables, plus the credentials directory
 * (`MCPGW_CLIENT_DIR`) and a HOME of its own next to it; `extra` goes on top.
 */
export function cliEnv(clientDir: string, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(MCP_|MCPGW_|GITHUB_|REDIS_|XDG_CONFIG_HOME$|BROWSER$)/.test(k)) env[k] = v;
  }
  const home = `${clientDir}.home`;
  mkdirSync(home, { recursive: true });
  env.HOME = home;
  env.MCPGW_CLIENT_DIR = clientDir;
  return { ...env, ...extra };
}

export interface CliRun {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

export interface CliOptions {
  /** Variables on top of cliEnv(); a value of "" removes the variable. */
  env?: Record<string, string>;
  /** Keep stdin open as a pipe (for `connect`). */
  stdin?: boolean;
}

export function startCli(args: string[], clientDir: string, options: CliOptions = {}): CliRun {
  const env = cliEnv(clientDir, options.env);
  for (const [k, v] of Object.entries(env)) if (v === "") delete env[k];
  const child = spawn(process.execPath, [BIN, ...args], {
    env,
    stdio: [options.stdin ? "pipe" : "ignore", "pipe", "pipe"],
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
  options: CliOptions = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = startCli(args, clientDir, options);
  const code = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/** Waits until `text()` holds an authorization URL (a line of its own), and returns it. */
export async function authorizationUrlIn(
  text: () => string,
  alive: () => boolean,
  timeoutMs = 10_000,
  after = 0,
): Promise<URL> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = /^\s+(http\S+\/authorize\?\S+)$/m.exec(text().slice(after));
    if (match?.[1]) return new URL(match[1]);
    if (!alive() || Date.now() > deadline) {
      throw new Error(`no authorization URL: ${text()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until `login` has printed the authorization URL on stderr, and returns it. */
export function authorizationUrlOf(run: CliRun, timeoutMs = 10_000): Promise<URL> {
  return authorizationUrlIn(run.stderr, () => run.child.exitCode === null, timeoutMs);
}
