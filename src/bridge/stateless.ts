/**
 * The bridge's 2026-07-28 side: one POST is one request, its `_meta` envelope says who the client
 * is. A 2026-07-28 child gets the request as it is; for a 2025 child the bridge answers
 * `server/discover` from the child's `initialize` result, strips the envelope, applies the
 * request's log level, turns the child's own requests into `input_required` rounds, feeds
 * `subscriptions/listen` from the child's notifications and marks every result `complete`.
 */
import type { ServerResponse } from "node:http";
import {
  type Envelope,
  META,
  MODERN_VERSIONS,
  readEnvelope,
  severityOf,
  withoutEnvelope,
} from "./envelope.js";
import { Exchange } from "./exchange.js";
import {
  ErrorCode,
  errorResponse,
  idKey,
  isNotification,
  isRequest,
  type JsonRpcId,
  type JsonRpcMessage,
} from "./jsonrpc.js";
import { ListenHub } from "./listen.js";
import { MultiRoundTrips } from "./mrtr.js";
import type { BridgeLogger, SessionRegistry, StatelessBackend } from "./registry.js";
import { sendJsonRpcError } from "./sse.js";
import type { Pending, StatelessHooks, Upstream } from "./upstream.js";

/** Methods of the session era that 2026-07-28 has no more: answered "not found", never forwarded. */
const SESSION_ONLY = new Set([
  "initialize",
  "ping",
  "logging/setLevel",
  "resources/subscribe",
  "resources/unsubscribe",
]);

interface Accepts {
  json: boolean;
  sse: boolean;
}

/** A request in flight, findable by its owner's cancellation. */
interface InFlight {
  upstream: Upstream;
  entry: Pending;
}

/** The HTTP status of a 2026-07-28 answer: the errors the transport spec gives a 4xx, else 200. */
function statusOf(msg: JsonRpcMessage): number {
  const code = (msg.error as { code?: unknown } | undefined)?.code;
  if (code === ErrorCode.MethodNotFound) return 404;
  if (
    code === ErrorCode.HeaderMismatch ||
    code === ErrorCode.MissingRequiredClientCapability ||
    code === ErrorCode.UnsupportedProtocolVersion
  ) {
    return 400;
  }
  return 200;
}

/** Methods whose 2026-07-28 answer may be `input_required` (multi-round-trip requests). */
const ROUND_TRIP_METHODS = new Set(["tools/call", "prompts/get", "resources/read"]);

/** Methods whose 2026-07-28 results carry cache hints. */
const CACHEABLE = new Set([
  "tools/list",
  "prompts/list",
  "resources/list",
  "resources/templates/list",
  "resources/read",
  "server/discover",
]);

/**
 * A 2025 child's result as 2026-07-28 has it: `resultType: "complete"`, and for a cacheable
 * method the hints "do not cache, private" (what a child that knows nothing of caching means).
 */
function completed(msg: JsonRpcMessage, method: string): JsonRpcMessage {
  const result = msg.result as Record<string, unknown> | undefined;
  if (!result || typeof result !== "object" || "resultType" in result) return msg;
  const shaped: Record<string, unknown> = { ...result, resultType: "complete" };
  if (CACHEABLE.has(method)) {
    shaped.ttlMs ??= 0;
    shaped.cacheScope ??= "private";
  }
  return { ...msg, result: shaped };
}

export class StatelessEndpoint {
  private readonly inFlight = new Map<string, InFlight>();
  /** Open listen streams on 2025 children by owner and id: what ends one when it is cancelled. */
  private readonly hubStreams = new Map<string, () => void>();
  /** Listen streams passed through to 2026-07-28 children, for keep-alives. */
  private readonly streams = new Set<Exchange>();
  private readonly rounds: MultiRoundTrips;

  /** @param opts.roundWaitMs how long a multi-round-trip request waits for the client's next round */
  constructor(
    private readonly registry: SessionRegistry,
    private readonly opts: { roundWaitMs: number; maxSessions: number; logger?: BridgeLogger },
  ) {
    this.rounds = new MultiRoundTrips(opts.roundWaitMs);
  }

  /** Serve one POSTed message that claims a 2026-07-28 revision. */
  async handle(msg: JsonRpcMessage, owner: string, accepts: Accepts, res: ServerResponse): Promise<void> {
    if (isNotification(msg)) {
      if (msg.method === "notifications/cancelled") this.cancelled(msg, owner);
      res.writeHead(202).end();
      return;
    }
    if (!isRequest(msg)) {
      sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, "Invalid Request: a response without a session");
      return;
    }
    const id = msg.id as JsonRpcId;
    const envelope = readEnvelope(msg);
    if (typeof envelope === "string") {
      sendJsonRpcError(res, 400, ErrorCode.InvalidParams, `Invalid _meta envelope: ${envelope}`, id);
      return;
    }
    if (!MODERN_VERSIONS.includes(envelope.protocolVersion)) {
      sendJsonRpcError(
        res,
        400,
        ErrorCode.UnsupportedProtocolVersion,
        `Unsupported protocol version: ${envelope.protocolVersion}`,
        id,
        {},
        { supported: MODERN_VERSIONS, requested: envelope.protocolVersion },
      );
      return;
    }
    if (SESSION_ONLY.has(msg.method as string)) {
      sendJsonRpcError(res, 404, ErrorCode.MethodNotFound, "Method not found", id);
      return;
    }
    const listen = msg.method === "subscriptions/listen";
    if (listen && !accepts.sse) {
      sendJsonRpcError(
        res,
        406,
        ErrorCode.ServerError,
        "Not Acceptable: a listen stream needs text/event-stream",
      );
      return;
    }
    const exchange = new Exchange(res, 1, false, accepts, {}, statusOf);
    const state = (msg.params as { requestState?: unknown } | undefined)?.requestState;
    if (typeof state === "string") {
      if (!this.rounds.resume(state, owner, msg, exchange)) {
        exchange.respond(errorResponse(id, ErrorCode.InvalidParams, "Invalid or expired requestState"));
      }
      return;
    }
    let backend: StatelessBackend | null;
    try {
      backend = await this.registry.backend(owner, envelope);
    } catch (err) {
      exchange.respond(errorResponse(id, ErrorCode.InternalError, (err as Error).message));
      return;
    }
    if (!backend) {
      sendJsonRpcError(
        res,
        503,
        ErrorCode.ServerError,
        `Too many sessions (limit ${this.opts.maxSessions}); try later`,
        id,
        {
          "retry-after": "5",
        },
      );
      return;
    }
    if (backend.era === "modern") this.passThrough(backend, msg, owner, exchange, envelope, res);
    else if (msg.method === "server/discover") this.discover(backend, id, exchange);
    else if (listen) this.listen(backend, msg, owner, exchange, res);
    else this.translate(backend, msg, owner, envelope, exchange, res);
  }

  /** Keep-alive comments on the listen streams. */
  ping(): void {
    for (const exchange of this.streams) exchange.ping();
  }

  /** Cancel every request waiting for a next round (the bridge closes). */
  close(): void {
    this.rounds.clear();
  }

  /** A 2026-07-28 child: the request goes as it is (ids remapped), and so does its answer. */
  private passThrough(
    backend: StatelessBackend,
    msg: JsonRpcMessage,
    owner: string,
    exchange: Exchange,
    envelope: Envelope,
    res: ServerResponse,
  ): void {
    const listen = msg.method === "subscriptions/listen";
    const hooks: StatelessHooks = { logSeverity: severityOf(envelope.logLevel), listen };
    this.forward(backend, msg, msg, owner, exchange, hooks, res);
    if (listen) {
      this.streams.add(exchange);
      res.on("close", () => this.streams.delete(exchange));
    }
  }

  /** A 2025 child: without the envelope, at the request's log level, with its questions as rounds. */
  private translate(
    backend: StatelessBackend,
    msg: JsonRpcMessage,
    owner: string,
    envelope: Envelope,
    exchange: Exchange,
    res: ServerResponse,
  ): void {
    const { upstream } = backend;
    if (envelope.logLevel) upstream.applyLogLevel(envelope.logLevel);
    const method = msg.method as string;
    const hooks: StatelessHooks = {
      logSeverity: severityOf(envelope.logLevel),
      shape: (out) => completed(out, method),
    };
    // Only these methods may answer input_required; a question the child asks during another
    // (roots/list right after initialize, say) is not this request's.
    if (ROUND_TRIP_METHODS.has(method)) {
      hooks.onChildRequest = (request, entry) =>
        this.rounds.ask(upstream, entry, owner, method, envelope.capabilities, request);
    }
    this.forward(backend, msg, withoutEnvelope(msg), owner, exchange, hooks, res);
  }

  private forward(
    backend: StatelessBackend,
    msg: JsonRpcMessage,
    outgoing: JsonRpcMessage,
    owner: string,
    exchange: Exchange,
    hooks: StatelessHooks,
    res: ServerResponse,
  ): void {
    const key = `${owner}\n${idKey(msg.id)}`;
    const { upstream } = backend;
    const entry = upstream.request(backend.caller, outgoing, exchange, undefined, hooks);
    if (!entry) return;
    this.inFlight.set(key, { upstream, entry });
    entry.onFinish = () => {
      if (this.inFlight.get(key)?.entry === entry) this.inFlight.delete(key);
    };
    // A client that hangs up gives up on its request (a listen: on its subscription); one that
    // was answered input_required is not gone, it comes back with the next round.
    res.on("close", () => {
      if (exchange.answered || entry.reply !== exchange) return;
      upstream.cancel(entry, "the client disconnected");
    });
  }

  /** `server/discover` for a 2025 child, from what it said to `initialize`. */
  private discover(backend: StatelessBackend, id: JsonRpcId, exchange: Exchange): void {
    const init = backend.upstream.initialized;
    const result: Record<string, unknown> = {
      supportedVersions: MODERN_VERSIONS,
      capabilities: init?.capabilities ?? {},
      resultType: "complete",
      ttlMs: 0,
      cacheScope: "private",
    };
    if (typeof init?.instructions === "string") result.instructions = init.instructions;
    if (init?.serverInfo) result._meta = { [META.serverInfo]: init.serverInfo };
    exchange.respond({ jsonrpc: "2.0", id, result });
  }

  /** `subscriptions/listen` for a 2025 child, fed by its list-changed and resource-updated notifications. */
  private listen(
    backend: StatelessBackend,
    msg: JsonRpcMessage,
    owner: string,
    exchange: Exchange,
    res: ServerResponse,
  ): void {
    backend.hub ??= new ListenHub(backend.upstream);
    const hub = backend.hub;
    const id = msg.id as JsonRpcId;
    const key = `${owner}\n${idKey(id)}`;
    hub.add(id, (msg.params as { notifications?: unknown } | undefined)?.notifications, exchange);
    backend.caller.touch();
    const stop = () => {
      if (this.hubStreams.get(key) === stop) this.hubStreams.delete(key);
      hub.remove(id, exchange);
      exchange.abandon();
      backend.caller.touch();
    };
    this.hubStreams.set(key, stop);
    res.on("close", stop);
  }

  /** `notifications/cancelled` from a stateless client: its request, found by owner and id. */
  private cancelled(msg: JsonRpcMessage, owner: string): void {
    const requestId = (msg.params as { requestId?: unknown } | undefined)?.requestId;
    const key = `${owner}\n${idKey(requestId)}`;
    const stream = this.hubStreams.get(key);
    if (stream) {
      stream();
      return;
    }
    const flight = this.inFlight.get(key);
    if (!flight) return;
    flight.upstream.cancel(flight.entry, "cancelled by the client");
    this.opts.logger?.info({ requestId }, "stateless request cancelled by the client");
  }
}
