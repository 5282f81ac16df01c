/**
 * The stdio <-> Streamable HTTP bridge: serves a stdio MCP server at `http://host:port/path`,
 * one child per session (`per-session`) or one child for all sessions (`shared`).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createEndpoint } from "./http.js";
import { type BridgeLogger, SessionRegistry } from "./registry.js";

export type { BridgeLogger } from "./registry.js";

/** How to run and serve one stdio MCP server. */
export interface BridgeOptions {
  command: string;
  args: string[];
  /** The child's whole environment beyond PATH and HOME; the gateway's own is never passed. */
  env: Record<string, string>;
  cwd?: string;
  sessionMode: "per-session" | "shared";
  maxSessions: number;
  idleTimeoutSeconds: number;
  requestTimeoutSeconds: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default "/mcp". */
  path?: string;
  /**
   * Host header names accepted, against DNS rebinding. Default: when listening on loopback,
   * only loopback names (127.0.0.1, localhost, [::1]); otherwise any. `false` accepts any.
   */
  allowedHosts?: string[] | false;
  /** Largest POST body accepted; default 4 MiB. */
  maxBodyBytes?: number;
  logger?: BridgeLogger;
}

/** A bridge that is listening. */
export interface RunningBridge {
  /** e.g. http://127.0.0.1:34567/mcp */
  url: string;
  /** Number of live sessions. */
  sessions(): number;
  /** PIDs of the live child processes. */
  childPids(): number[];
  /** Stop listening, end every session and child, and wait for the children to exit. */
  close(): Promise<void>;
}

/** Seconds between keep-alive comments on open GET streams. */
const PING_INTERVAL_MS = 25_000;

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

function hostAllowList(bindHost: string, configured: string[] | false | undefined): Set<string> | undefined {
  if (configured === false) return undefined;
  if (configured) return new Set(configured.map((h) => h.toLowerCase()));
  if (!isLoopback(bindHost)) return undefined;
  return new Set(["127.0.0.1", "localhost", "[::1]", bindHost.includes(":") ? `[${bindHost}]` : bindHost]);
}

/** Start a bridge; resolves once it is listening. */
export async function startBridge(opts: BridgeOptions): Promise<RunningBridge> {
  const host = opts.host ?? "127.0.0.1";
  const path = opts.path ?? "/mcp";
  const idleTimeoutMs = Math.max(1, opts.idleTimeoutSeconds) * 1000;
  const registry = new SessionRegistry({
    spec: { command: opts.command, args: opts.args, env: opts.env, cwd: opts.cwd },
    shared: opts.sessionMode === "shared",
    maxSessions: opts.maxSessions,
    idleTimeoutMs,
    requestTimeoutMs: Math.max(1, opts.requestTimeoutSeconds) * 1000,
    logger: opts.logger,
  });
  const handle = createEndpoint(registry, {
    path,
    allowedHosts: hostAllowList(host, opts.allowedHosts),
    maxBodyBytes: opts.maxBodyBytes ?? 4 * 1024 * 1024,
    maxSessions: opts.maxSessions,
    logger: opts.logger,
  });
  const server = createServer((req, res) => void handle(req, res));
  // GET streams and slow tool calls are long-lived: no overall request deadline.
  server.requestTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const reaper = setInterval(() => registry.reap(), Math.min(30_000, Math.max(200, idleTimeoutMs / 4)));
  reaper.unref();
  const pinger = setInterval(() => registry.ping(), PING_INTERVAL_MS);
  pinger.unref();

  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${urlHost}:${port}${path}`,
    sessions: () => registry.size,
    childPids: () => registry.childPids(),
    close() {
      closing ??= (async () => {
        clearInterval(reaper);
        clearInterval(pinger);
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        await registry.closeAll();
        server.closeAllConnections();
        await stopped;
      })();
      return closing;
    },
  };
}
