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
import { pipeline } from "node:stream/promises";
import { Agent, type Dispatcher } from "undici";
import { sendJsonRpcError } from "../bridge/sse.js";
import { StoreUnavailableError } from "../store/errors.js";
import { answerHasBody, VerifiedFrames, verifiedAnswerHead } from "./answer-signature.js";
import type { SessionOwners } from "./owners.js";
import { CLUSTER_FROM_HEADER, CLUSTER_HEADER_PREFIX, relayPath } from "./protocol.js";
import { NONCE_HEADER, signRelayed } from "./signature.js";

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
    const nonce = headers[NONCE_HEADER] as string;

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
    // Destroying an undici body emits 'error' (aborted): without a listener that ends the process.
    answer.on("error", () => undefined);
    if (cancelled) {
      answer.destroy();
      return true;
    }
    // Only the owner's own answer to this very request goes on (answer-signature.ts): its head
    // before anything is forwarded, each frame of its body before that frame's data.
    const head = verifiedAnswerHead(this.key, nonce, upstream.statusCode, upstream.headers);
    if (!head) {
      answer.destroy();
      this.log?.warn({ service, owner }, "answer on the internal channel not signed by the owner; dropped");
      sendJsonRpcError(res, 502, -32000, "The instance holding this session did not answer");
      return true;
    }
    res.writeHead(upstream.statusCode, head.headers);
    if (String(upstream.headers["content-type"] ?? "").startsWith("text/event-stream")) res.flushHeaders();
    if (!answerHasBody(method, upstream.statusCode)) {
      answer.destroy();
      res.end();
      return true;
    }
    pipeline(answer, new VerifiedFrames(this.key, head.chain), res).catch((err: Error) => {
      if (cancelled) return;
      this.log?.warn({ service, owner, err: err.message }, "answer on the internal channel broken off");
      // Never a clean end: the client must not take a cut or altered answer for a whole one.
      res.destroy();
    });
    return true;
  }

  async close(): Promise<void> {
    await this.agent.destroy();
  }
}
