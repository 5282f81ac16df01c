/**
 * The stdio <-> Streamable HTTP bridge: serves a stdio MCP server at `http://host:port/path`, or
 * on a unix socket (the gateway's in-process bridges), one child per session (`per-session`) or
 * one child for all sessions (`shared`). Both protocol eras on the one path: 2025 sessions, and
 * 2026-07-28 stateless requests, whichever era the child itself speaks.
 */
import { chmodSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { hashSecret } from "../crypto/secrets.js";
import { createEndpoint, type OwnerHeaders } from "./http.js";
import type { SessionPlacement } from "./placement.js";
import { type BridgeLogger, SessionRegistry } from "./registry.js";
import { StatelessEndpoint } from "./stateless.js";

export type { OwnerHeaders } from "./http.js";
export type { SessionPlacement } from "./placement.js";
export type { BridgeLogger } from "./registry.js";
export { SocketDir } from "./socket-dir.js";

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
  /**
   * Listen on this unix socket instead of host and port, mode 0600; its directory must be one
   * only this user can enter (see SocketDir). Node removes the socket file on close.
   */
  socketPath?: string;
  /** Require `Authorization: Bearer <authToken>` on every request (401 otherwise). */
  authToken?: string;
  /**
   * The headers that name who is calling (the gateway's `identity_headers`); a session answers
   * only requests with the same user and client as the one that opened it. Default X-User-Id
   * and X-Auth-Client-Id; requests without them are all one anonymous owner.
   */
  identityHeaders?: OwnerHeaders;
  /** Default "/mcp". */
  path?: string;
  /**
   * Host header names accepted, against DNS rebinding. Default: when listening on loopback,
   * only loopback names (127.0.0.1, localhost, [::1]); otherwise any. `false` accepts any.
   */
  allowedHosts?: string[] | false;
  /** Largest POST body accepted; default 4 MiB. */
  maxBodyBytes?: number;
  /** Several gateway instances: records this bridge's sessions, finds the others' (src/cluster/). */
  placement?: SessionPlacement;
  logger?: BridgeLogger;
}

/** A bridge that is listening. */
export interface RunningBridge {
  /** e.g. http://127.0.0.1:34567/mcp; on a unix socket, http://localhost/mcp (the Host to send). */
  url: string;
  /** The unix socket it listens on, if it does. */
  socketPath?: string;
  /** Number of live sessions. */
  sessions(): number;
  /** PIDs of the live child processes. */
  childPids(): number[];
  /** Ids of the live sessions. */
  sessionIds(): string[];
  /**
   * Serve a request another instance relayed for a session held here, as if it had arrived on
   * the bridge's own listener (never relayed on: a session not here is 404).
   */
  serveRelayed(req: IncomingMessage, res: ServerResponse, body?: Buffer): Promise<void>;
  /** Stop listening, end every session and child, and wait for the children to exit. */
  close(): Promise<void>;
}

/** The gateway's default identity header names (config `gateway.identity_headers`). */
const DEFAULT_IDENTITY_HEADERS: OwnerHeaders = { userId: "X-User-Id", clientId: "X-Auth-Client-Id" };

/** Seconds between keep-alive comments on open GET streams. */
const PING_INTERVAL_MS = 25_000;

function tcpUrl({ port }: AddressInfo, host: string, path: string): string {
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}${path}`;
}

/** Whether a listen address is reachable from this machine only. */
export function isLoopback(host: string): boolean {
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
    onSessionEnded: opts.placement && ((id) => opts.placement?.ended(id)),
    logger: opts.logger,
  });
  // A multi-round-trip request waits as long as an idle session would for the client's next round.
  const stateless = new StatelessEndpoint(registry, {
    roundWaitMs: idleTimeoutMs,
    maxSessions: opts.maxSessions,
    logger: opts.logger,
  });
  const handle = createEndpoint(registry, {
    stateless,
    path,
    // No browser reaches a unix socket: DNS rebinding is a TCP concern.
    allowedHosts: opts.socketPath ? undefined : hostAllowList(host, opts.allowedHosts),
    authTokenHash: opts.authToken === undefined ? undefined : hashSecret(opts.authToken),
    identityHeaders: opts.identityHeaders ?? DEFAULT_IDENTITY_HEADERS,
    maxBodyBytes: opts.maxBodyBytes ?? 4 * 1024 * 1024,
    maxSessions: opts.maxSessions,
    placement: opts.placement,
    logger: opts.logger,
  });
  const server = createServer((req, res) => void handle(req, res));
  // GET streams and slow tool calls are long-lived: no overall request deadline.
  server.requestTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    const listening = () => {
      server.off("error", reject);
      resolve();
    };
    if (opts.socketPath) server.listen(opts.socketPath, listening);
    else server.listen(opts.port ?? 0, host, listening);
  });
  if (opts.socketPath) {
    try {
      chmodSync(opts.socketPath, 0o600);
    } catch (err) {
      server.close();
      throw err;
    }
  }
  const reaper = setInterval(() => registry.reap(), Math.min(30_000, Math.max(200, idleTimeoutMs / 4)));
  reaper.unref();
  const pinger = setInterval(() => {
    registry.ping();
    stateless.ping();
  }, PING_INTERVAL_MS);
  pinger.unref();

  let closing: Promise<void> | null = null;
  return {
    url: opts.socketPath ? `http://localhost${path}` : tcpUrl(server.address() as AddressInfo, host, path),
    socketPath: opts.socketPath,
    sessions: () => registry.size,
    childPids: () => registry.childPids(),
    sessionIds: () => registry.ids(),
    serveRelayed: (req, res, body) => handle(req, res, true, body),
    close() {
      closing ??= (async () => {
        clearInterval(reaper);
        clearInterval(pinger);
        stateless.close();
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        await registry.closeAll();
        server.closeAllConnections();
        await stopped;
      })();
      return closing;
    },
  };
}
