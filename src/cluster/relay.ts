/**
 * The sending half of the internal channel: a request for a bridged session held by another
 * instance goes there, with what this instance decided (the identity headers its gateway set
 * from the verified token), signed with a key derived from the cluster secret (signature.ts: the
 * secret itself never goes on the wire), and the owner's answer streams back as it
 * comes (SSE included). An owner that does not answer a connection is gone: its entry is
 * deleted and the client gets 404, so it starts a new session (MCP, Streamable HTTP).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import { Agent, type Dispatcher } from "undici";
import { sendJsonRpcError } from "../bridge/sse.js";
import { StoreUnavailableError } from "../store/errors.js";
import type { SessionOwners } from "./owners.js";
import { CLUSTER_FROM_HEADER, CLUSTER_HEADER_PREFIX, relayPath } from "./protocol.js";
import { signRelayed } from "./signature.js";

/** Never copied onto the relayed request: connection fields, and what the relay sets itself. */
const NOT_RELAYED = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  "expect",
  "authorization",
]);

/** Connection fields of the owner's answer; Node sets its own. */
const HOP_BY_HOP_RESPONSE = new Set(["connection", "keep-alive", "transfer-encoding", "trailer", "upgrade"]);

/** Errors that mean nothing listens at the owner's address any more. */
const GONE = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENOTFOUND", "UND_ERR_CONNECT_TIMEOUT"]);

export interface RelayLogger {
  warn(obj: object, msg?: string): void;
}

export class OwnerRelay {
  private readonly agent: Agent;

  constructor(
    private readonly owners: SessionOwners,
    /** The signing key (signature.ts relayKey). */
    private readonly key: Buffer,
    options: { headersTimeoutSeconds: number; log?: RelayLogger },
  ) {
    this.log = options.log;
    this.agent = new Agent({
      keepAliveTimeout: 30_000,
      connectTimeout: 5_000,
      headersTimeout: options.headersTimeoutSeconds * 1000,
      // SSE streams may be idle for long; the client's disconnect ends them.
      bodyTimeout: 0,
    });
  }

  private readonly log?: RelayLogger;

  /** SessionPlacement.relay for one service. */
  async relay(
    service: string,
    sessionId: string,
    req: IncomingMessage,
    res: ServerResponse,
    body?: Buffer,
  ): Promise<boolean> {
    let owner: string | undefined;
    try {
      owner = await this.owners.ownerOf(service, sessionId);
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      sendJsonRpcError(res, 503, -32000, "The gateway cannot reach its data store; try again shortly", null, {
        "retry-after": String(err.retryAfterSeconds),
      });
      return true;
    }
    // None, or this very instance (a restart at the same address): the session is gone.
    if (!owner) return false;
    if (owner === this.owners.self) {
      await this.owners.forget(service, sessionId, owner).catch(() => undefined);
      return false;
    }

    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || NOT_RELAYED.has(name) || name.startsWith(CLUSTER_HEADER_PREFIX)) continue;
      headers[name] = value;
    }
    headers[CLUSTER_FROM_HEADER] = this.owners.self;
    const path = relayPath(owner, service);
    const payload = body && body.length > 0 ? body : undefined;
    const method = req.method ?? "GET";
    signRelayed(this.key, { method, target: owner, path, body: payload }, headers);

    let cancelled = false;
    let answer: Readable | undefined;
    const abort = new AbortController();
    res.once("close", () => {
      if (res.writableFinished) return;
      cancelled = true;
      if (answer) answer.destroy();
      else abort.abort();
    });
    let upstream: Dispatcher.ResponseData;
    try {
      upstream = await this.agent.request({
        origin: new URL(owner).origin,
        path,
        method: method as Dispatcher.HttpMethod,
        headers,
        body: payload,
        signal: abort.signal,
      });
    } catch (err) {
      if (cancelled) return true;
      const code =
        (err as NodeJS.ErrnoException).code ?? (err as { cause?: NodeJS.ErrnoException }).cause?.code;
      if (code && GONE.has(code)) {
        this.log?.warn({ service, owner, code }, "session owner unreachable; the session is gone");
        await this.owners.forget(service, sessionId, owner).catch(() => undefined);
        return false;
      }
      this.log?.warn({ service, owner, code }, "relay to the session owner failed");
      sendJsonRpcError(res, 502, -32000, "The instance holding this session did not answer");
      return true;
    }
    answer = upstream.body;
    if (cancelled) {
      answer.destroy();
      return true;
    }
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(upstream.headers)) {
      if (value !== undefined && !HOP_BY_HOP_RESPONSE.has(name)) out[name] = value;
    }
    res.writeHead(upstream.statusCode, out);
    if (String(upstream.headers["content-type"] ?? "").startsWith("text/event-stream")) res.flushHeaders();
    answer.once("error", () => res.destroy());
    answer.pipe(res);
    return true;
  }

  async close(): Promise<void> {
    await this.agent.destroy();
  }
}
