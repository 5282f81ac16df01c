/**
 * The compiled CLI as a process, for tests of what a user's environment and config file do:
 * `serve` started and waited for (its banner), one-shot commands run to completion. Every
 * process gets this machine's environment without any MCP_*, Python-gateway or GitHub/Redis
 * variable, plus exactly what the test gives it.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { freePort } from "../support/upstream.js";

export const BIN = resolve("bin/mcp-gateway.js");
/** Whether `npm run build` has made dist/ (the CLI runs from it). */
export const BUILT = existsSync(resolve("dist/cli/main.js"));

/** The variables that configure the gateway, which must come from the test alone. */
const GATEWAY_VARIABLES =
  /^(MCP_|GITHUB_|REDIS_|BASE_DOMAIN$|ALLOWED_GITHUB_USERS$|CLIENT_LIFETIME$|ACCESS_TOKEN_LIFETIME$|REFRESH_TOKEN_LIFETIME$)/;

export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!GATEWAY_VARIABLES.test(k)) env[k] = v;
  return { ...env, ...extra };
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `mcp-gateway ARGS…` to completion. */
export function cli(
  args: string[],
  opts: { cwd: string; env?: Record<string, string>; input?: string },
): CliResult {
  const res = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd,
    input: opts.input,
    encoding: "utf8",
    env: cleanEnv(opts.env),
    timeout: 60_000,
  });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

export interface ServeProcess {
  child: ChildProcess;
  port: number;
  /** http://127.0.0.1:{port}: where the test connects. */
  base: string;
  /** Everything on stdout so far: the log (JSON lines, stdout being a pipe). */
  stdout(): string;
  /** Everything on stderr so far: the banner, then any warnings. */
  stderr(): string;
  /** The `service:` lines of the banner: the service names, in order. */
  services: string[];
  /** The first-run admin password, when the banner printed one. */
  password?: string;
  /** SIGTERM, and the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `mcp-gateway serve --port P ARGS…` and waits for its banner; rejects with stderr if it exits. */
export async function startServe(opts: {
  cwd: string;
  env?: Record<string, string>;
  args?: string[];
  timeoutMs?: number;
  /** A fixed port, for a restart that must keep the issuer its tokens name; a free one otherwise. */
  port?: number;
  /** Called with stdout and stderr so far on every write, before the banner too (a test that reacts to the log). */
  onOutput?: (stdout: string, stderr: string) => void;
}): Promise<ServeProcess> {
  const port = opts.port ?? (await freePort());
  const child = spawn(process.execPath, [BIN, "serve", "--port", String(port), ...(opts.args ?? [])], {
    cwd: opts.cwd,
    env: cleanEnv(opts.env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
    opts.onOutput?.(out, err);
  });
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
    opts.onOutput?.(out, err);
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  await new Promise<void>((resolveBanner, reject) => {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`serve printed no banner in ${timeoutMs} ms; stdout: ${out}; stderr: ${err}`));
    }, timeoutMs);
    // The banner is one write to stderr that holds the login line (and the first-run password).
    const check = () => {
      if (/^login: {4}.*\n/m.test(err)) {
        clearTimeout(timer);
        resolveBanner();
      }
    };
    child.stderr?.on("data", check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code}) before its banner: ${err.trim()}`));
    });
  });
  const services = [...err.matchAll(/^service: {2}\S+\/([^/\s]+)\/mcp$/gm)].map((m) => m[1] as string);
  return {
    child,
    port,
    base: `http://127.0.0.1:${port}`,
    stdout: () => out,
    stderr: () => err,
    services,
    password: /first run: created local user "admin" with password (\S+)/.exec(err)?.[1],
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      return exited;
    },
  };
}

/** `mcp-gateway serve` that must refuse to start: its exit code and stderr. */
export function serveRefused(opts: {
  cwd: string;
  env?: Record<string, string>;
  args?: string[];
}): CliResult {
  // A config error stops serve before it listens, so a one-shot run is enough.
  return cli(["serve", "--port", "0", ...(opts.args ?? [])], opts);
}
