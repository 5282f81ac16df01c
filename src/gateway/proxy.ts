/**
 * The reverse proxy to upstream MCP servers: one keep-alive undici Pool per upstream origin,
 * request bodies streamed from the socket (a small JSON POST is read whole, so its request ids
 * can be answered if the upstream dies: unanswered.ts), responses streamed back chunk by chunk
 * so SSE events reach the client as the upstream writes them.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { Transform, type TransformCallback } from "node:stream";
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from "fastify";
import { type Dispatcher, Pool, errors as undiciErrors } from "undici";
import type { ClientView } from "../http/client-address.js";
import type { RequestSpan } from "../ops/tracing.js";
import { declaresBody, upstreamRequestHeaders } from "./headers.js";
import { traceMessage } from "./request-trace.js";
import { type JsonRpcId, readTrackedBody, sendUnanswered, unansweredBody } from "./unanswered.js";
import { type RelayedRequest, UpstreamAnswer } from "./upstream-answer.js";

/** Idle keep-alive connections to an upstream are kept this long. */
const KEEP_ALIVE_MS = 60_000;

export interface ProxyOptions {
  /** Largest request body accepted, in bytes (`gateway.max_body`). */
  maxBody: number;
  /** How long to wait for the upstream's response headers, in seconds (`gateway.upstream_timeout`). */
  headersTimeoutSeconds: number;
  /** Lower-case header names a client may not set (identity header names). */
  reserved: Set<string>;
}

/** How one service's upstream is reached. */
export interface UpstreamTarget {
  /** Its Streamable HTTP endpoint; over a unix socket the host only names the Host header. */
  url: string;
  /** Connect to this unix socket instead of the URL's host and port (an in-process bridge). */
  socketPath?: string;
  /**
   * Sent as `Authorization: Bearer …` on every request (a standalone bridge's secret). Set over
   * whatever the request carries; the client's own Authorization is never forwarded anyway.
   */
  bearer?: string;
}

/**
 * What the gateway does beyond streaming, for a request it looked into (mcp-inspection.ts):
 * none of it is used on the plain path.
 */
export interface ForwardPlan {
  /** The body, already read whole (and checked): sent instead of the client's stream. */
  body?: Buffer;
  /** Request headers set over the client's (after hygiene, before identity). */
  headers?: Record<string, string>;
  /** A stream the answer's body goes through, chosen from its status and headers; none = as is. */
  answer?(status: number, headers: Record<string, string | string[] | undefined>): Transform | undefined;
}

/**
 * One proxied request as the proxy sees it, whichever way it arrived: fastify's route
 * (fastifyExchange) or the shortcut that takes admitted requests ahead of fastify
 * (proxy-shortcut.ts, rawExchange). The proxy itself only ever touches the node:http objects.
 */
export interface Exchange {
  readonly raw: IncomingMessage;
  readonly res: ServerResponse;
  readonly log: FastifyBaseLogger;
  /** What the gateway puts on the answer (CORS) under the upstream's own headers. */
  responseHeaders(): OutgoingHttpHeaders;
  /** Called once, just before the upstream's answer is written to `res` directly. */
  takeOver(): void;
  /**
   * The gateway's own error, before anything went to the client: one JSON-RPC error per
   * request id (unanswered.ts). `close` ends the connection (a body left unread).
   */
  fail(status: number, message: string, ids: readonly JsonRpcId[], close?: boolean): void;
  /** Called when `res` closes, from the one close listener the proxy puts on it. */
  closed?(): void;
}

/** The exchange of a request fastify routed; its reply is hijacked once the answer streams. */
export function fastifyExchange(request: FastifyRequest, reply: FastifyReply): Exchange {
  return {
    raw: request.raw,
    res: reply.raw,
    log: request.log,
    responseHeaders: () => reply.getHeaders() as OutgoingHttpHeaders,
    takeOver: () => reply.hijack(),
    fail(status, message, ids, close) {
      if (close) reply.header("connection", "close");
      sendUnanswered(reply, status, message, ids);
    },
  };
}

/**
 * The exchange of a request no framework touched: `headers` go on every answer; `onClosed` runs
 * once the response closes (the shortcut's request log). A class, not an object of closures:
 * one is made per proxied call.
 */
export class RawExchange implements Exchange {
  constructor(
    readonly raw: IncomingMessage,
    readonly res: ServerResponse,
    private readonly headers: Record<string, string>,
    readonly log: FastifyBaseLogger,
    /** `performance.now()` when the request arrived (the request log's duration). */
    readonly startedAt: number,
    private readonly onClosed?: (exchange: RawExchange) => void,
  ) {}

  responseHeaders(): OutgoingHttpHeaders {
    return this.headers;
  }

  takeOver(): void {}

  closed(): void {
    this.onClosed?.(this);
  }

  fail(status: number, message: string, ids: readonly JsonRpcId[], close?: boolean): void {
    const body = unansweredBody(ids, message);
    this.res.writeHead(status, {
      ...this.headers,
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      "content-length": Buffer.byteLength(body),
      ...(close ? { connection: "close" } : {}),
    });
    this.res.end(body);
  }
}

interface Target {
  pool: Dispatcher;
  /** Path (and query) of the upstream MCP endpoint. */
  path: string;
}

/** Puts the upstream's own credential on every request through a dispatcher, last. */
function withAuthorization(value: string): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => {
    // forward() passes an object (upstreamRequestHeaders); a flat [name, value, …] list is kept working.
    const headers = Array.isArray(opts.headers)
      ? [...opts.headers, "authorization", value]
      : { ...(opts.headers as Record<string, string | string[]> | null), authorization: value };
    return dispatch({ ...opts, headers }, handler);
  };
}

class BodyTooLarge extends Error {}

/** Counts bytes on the way through and fails the stream once the limit is passed. */
class BodyLimit extends Transform {
  private seen = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) done(new BodyTooLarge());
    else done(null, chunk);
  }
}

export class UpstreamProxy {
  private readonly targets = new Map<string, Target>();
  private readonly pools = new Map<string, Pool>();

  /** `upstreams`: service name -> where its Streamable HTTP endpoint is and how to reach it. */
  constructor(
    upstreams: Map<string, UpstreamTarget>,
    private readonly options: ProxyOptions,
  ) {
    for (const [name, upstream] of upstreams) {
      const url = new URL(upstream.url);
      // One pool per place connections go to: an origin, or a unix socket.
      const key = upstream.socketPath ? `unix:${upstream.socketPath}` : url.origin;
      let pool = this.pools.get(key);
      if (!pool) {
        pool = new Pool(url.origin, {
          keepAliveTimeout: KEEP_ALIVE_MS,
          headersTimeout: options.headersTimeoutSeconds * 1000,
          // SSE streams may be idle for long; the client's disconnect ends them, not a timer.
          bodyTimeout: 0,
          ...(upstream.socketPath ? { socketPath: upstream.socketPath } : {}),
        });
        this.pools.set(key, pool);
      }
      const dispatcher = upstream.bearer
        ? pool.compose(withAuthorization(`Bearer ${upstream.bearer}`))
        : pool;
      this.targets.set(name, { pool: dispatcher, path: `${url.pathname}${url.search}` });
    }
  }

  /** Whether the service has an upstream to proxy to. */
  has(service: string): boolean {
    return this.targets.has(service);
  }

  /**
   * Forwards the request to the service's upstream and streams the answer back. Resolves once
   * the answer is on its way (or the error was sent); never rejects for the upstream's sake.
   */
  forward(
    exchange: Exchange,
    service: string,
    identity: Readonly<Record<string, string>>,
    client: ClientView,
    plan?: ForwardPlan,
    span?: RequestSpan,
  ): Promise<void> {
    return new Promise((resolve, reject) =>
      this.relay(exchange, service, identity, client, plan, span, resolve, reject),
    );
  }

  /**
   * forward() without a promise, for the shortcut (proxy-shortcut.ts), where the caller waits
   * on nothing: `settled` once the answer is on its way (or the error was sent), `bug` for the
   * gateway's own error (a throw here, or after the body was read), with the exchange it
   * happened on (so one function serves every call).
   */
  relay(
    exchange: Exchange,
    service: string,
    identity: Readonly<Record<string, string>>,
    client: ClientView,
    plan: ForwardPlan | undefined,
    span: RequestSpan | undefined,
    settled: () => void,
    bug: (err: unknown, exchange: Exchange) => void,
  ): void {
    try {
      const { raw, res } = exchange;
      const target = this.targets.get(service);
      const relay = new Relay(this, exchange, service, plan, span, settled);
      // The one close listener: a client that goes away (closes an SSE stream) releases the
      // upstream request too, and the exchange hears of the close (the shortcut's request log).
      res.on("close", relay.onClose);
      if (!target) {
        relay.fail(502, `The service ${service} has no upstream`, []);
        return;
      }
      const declared = Number(raw.headers["content-length"] ?? 0);
      if (declared > this.options.maxBody && !plan?.body) {
        relay.tooLarge();
        return;
      }
      const hasBody = plan?.body !== undefined || declaresBody(raw.headers);

      const url = raw.url as string;
      const query = url.indexOf("?");
      const path = query >= 0 ? joinQuery(target.path, url.slice(query + 1)) : target.path;
      const headers = upstreamRequestHeaders(raw.headers, identity, this.options.reserved, {
        for: client.ip,
        proto: client.proto,
        host: client.host,
      });
      if (plan?.headers) Object.assign(headers, plan.headers);
      if (plan?.body) headers["content-length"] = String(plan.body.length);
      const answer = new UpstreamAnswer(relay, res);
      relay.answer = answer;
      const dispatch = () => {
        const sent = relay.sent;
        // Tracing on: the span names the MCP method, and the upstream continues the span's trace.
        if (span && sent) traceMessage(span, sent);
        if (span) Object.assign(headers, span.headers());
        // A declared length is enforced by Node's parser (it never reads past it) and was checked
        // against the limit above; only a chunked body needs counting on the way through.
        const body = sent
          ? sent
          : !hasBody
            ? undefined
            : raw.headers["transfer-encoding"] !== undefined
              ? raw.pipe(new BodyLimit(this.options.maxBody))
              : raw;
        target.pool.dispatch({ method: raw.method as "GET", path, headers, body }, answer);
      };
      // Read whole only when small JSON (unless a plan already did); its ids are parsed only if
      // the answer needs them.
      const tracking =
        !plan?.body &&
        readTrackedBody(raw, (err, body) => {
          if (err) {
            if (!answer.cancelled && !res.destroyed) this.failed(exchange, service, err, false, []);
            settled();
            return;
          }
          relay.sent = body;
          try {
            dispatch();
          } catch (thrown) {
            bug(thrown, exchange);
          }
        });
      if (!tracking) dispatch();
    } catch (err) {
      bug(err, exchange);
    }
  }

  /** The upstream failed before anything went to the client: the gateway's own error, per id. */
  failed(
    exchange: Exchange,
    service: string,
    err: Error,
    headersCame: boolean,
    ids: readonly JsonRpcId[],
  ): void {
    const { log } = exchange;
    if (err instanceof BodyTooLarge || err.cause instanceof BodyTooLarge) {
      this.tooLarge(exchange);
      return;
    }
    if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) {
      log.warn({ service }, "upstream timed out");
      exchange.fail(504, `The upstream of ${service} did not answer in time`, ids);
      return;
    }
    if (err instanceof undiciErrors.SocketError || headersCame) {
      // Connected, then cut off before the answer's first byte.
      log.warn(
        { service, code: (err as NodeJS.ErrnoException).code, err: err.message },
        "upstream closed the connection",
      );
      exchange.fail(502, `The upstream of ${service} closed the connection before answering`, ids);
      return;
    }
    log.warn(
      { service, code: (err as NodeJS.ErrnoException).code, err: err.message },
      "upstream unavailable",
    );
    exchange.fail(502, `The upstream of ${service} is unavailable`, ids);
  }

  async close(): Promise<void> {
    // destroy, not close: open SSE streams would otherwise hold shutdown forever.
    await Promise.all([...this.pools.values()].map((p) => p.destroy()));
  }

  /** @internal (Relay) */
  tooLarge(exchange: Exchange): void {
    // The rest of the body is not read; close the connection rather than drain it.
    exchange.fail(413, `The request body is larger than ${this.options.maxBody} bytes`, [], true);
  }
}

function joinQuery(path: string, query: string): string {
  if (!query) return path;
  return path.includes("?") ? `${path}&${query}` : `${path}?${query}`;
}

/**
 * One forwarded request as its answer (upstream-answer.ts) sees it: a class, so a proxied call
 * makes one object with its methods on the prototype rather than a handful of closures.
 */
class Relay implements RelayedRequest {
  readonly method: string;
  readonly log: FastifyBaseLogger;
  readonly rewrite: ForwardPlan["answer"];
  sent: Buffer | undefined;
  answer: UpstreamAnswer | undefined;
  /** `res`'s close listener (the only per-call closure). */
  readonly onClose = (): void => {
    if (this.answer && !this.exchange.res.writableFinished) this.answer.cancel();
    this.exchange.closed?.();
  };

  constructor(
    private readonly proxy: UpstreamProxy,
    private readonly exchange: Exchange,
    readonly service: string,
    plan: ForwardPlan | undefined,
    readonly span: RequestSpan | undefined,
    readonly settled: () => void,
  ) {
    this.method = exchange.raw.method as string;
    this.log = exchange.log;
    this.sent = plan?.body;
    this.rewrite = plan?.answer;
  }

  responseHeaders(): OutgoingHttpHeaders {
    return this.exchange.responseHeaders();
  }

  takeOver(): void {
    this.exchange.takeOver();
  }

  failed(err: Error, headersCame: boolean, ids: readonly JsonRpcId[]): void {
    this.proxy.failed(this.exchange, this.service, err, headersCame, ids);
  }

  /** The gateway's own error before any upstream request; forward() resolves. */
  fail(status: number, message: string, ids: readonly JsonRpcId[]): void {
    this.exchange.fail(status, message, ids);
    this.settled();
  }

  tooLarge(): void {
    this.proxy.tooLarge(this.exchange);
    this.settled();
  }
}
