/**
 * What is recorded when a request is answered, whether fastify answered it or a shortcut did
 * (src/http/server.ts): the request metrics, and one access-log line at info in the same shape
 * for both. fastify's two lines per request ("incoming request", "request completed") become
 * that one line, which carries the request too.
 */
import type { IncomingMessage } from "node:http";
import {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from "fastify";
import { type AccessLines, accessLines, pathOf } from "./access-line.js";
import { RequestMetrics } from "./request-metrics.js";

/** Where the client of a request is looked up (src/http/client-address.ts; declared here so ops needs no http). */
export interface ClientLookup {
  of(req: IncomingMessage): { ip: string; host: string | undefined };
}

/**
 * The request as a log line shows it (method, URL, client address, host), read from the
 * view of the client worked out once per request, never from the socket: by the time a line
 * is written the client may be gone and Node may have let go of the socket (a hijacked,
 * streamed reply, a 202 with no body), and reading it there used to throw out of a 'finish'
 * listener and end the process.
 */
class LoggedRequest {
  constructor(
    private readonly message: IncomingMessage,
    private readonly clients: ClientLookup,
  ) {}
  get method(): string {
    return this.message.method ?? "";
  }
  get url(): string {
    return this.message.url ?? "";
  }
  get headers(): IncomingMessage["headers"] {
    return this.message.headers;
  }
  get ip(): string {
    return this.clients.of(this.message).ip;
  }
  get host(): string | undefined {
    return this.clients.of(this.message).host;
  }
}

/**
 * The access line for `message` through `lines` (asked `enabled()` first), naming the client from the view worked out
 * once per request (see LoggedRequest for why never from the socket).
 */
function writeAccessLine(
  lines: AccessLines,
  message: IncomingMessage,
  clients: ClientLookup,
  statusCode: number,
  responseTime: number,
  reqId?: string,
): void {
  const { method = "", url = "" } = message;
  lines.write(method, pathOf(url), clients.of(message).ip, statusCode, responseTime, reqId);
}

/**
 * Request ids, one sequence for fastify (its `genReqId`) and the shortcuts, in fastify's own
 * default form (`req-1`, `req-2`, … in base 36, wrapping at 2^31 - 1): a line a shortcut writes
 * carries an id as the route's line would, and no two requests of a process share one.
 */
export class RequestIds {
  private last = 0;

  readonly next = (): string => {
    this.last = (this.last + 1) & 0x7fffffff;
    return `req-${this.last.toString(36)}`;
  };
}

/**
 * fastify's request log lines, one per request (none when `enabled` is false), the access line
 * written as src/ops/access-line.ts builds it; its error lines stay pino's, and every line
 * that names the request names it through LoggedRequest.
 */
export class OneLinePerRequest extends LogController {
  constructor(
    private readonly enabled: boolean,
    private readonly clients: ClientLookup,
  ) {
    super();
  }

  override incomingRequest(): void {}

  /**
   * fastify's "Route GET:/x?code=… not found" line would carry the query string, where codes
   * and tokens travel; the request's one line already says 404, with the path alone.
   */
  override routeNotFound(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (this.isLogDisabled(request)) return;
    if (error)
      reply.log.error(
        { req: this.view(request), res: reply, responseTime: reply.elapsedTime, err: error },
        "request errored",
      );
    else if (this.enabled) {
      // reply.log is the request's own child logger (its reqId), new for every request.
      const lines = accessLines(reply.log);
      if (lines.enabled())
        writeAccessLine(lines, request.raw, this.clients, reply.statusCode, reply.elapsedTime);
    }
  }

  override defaultErrorLog(error: Error, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    if (reply.statusCode >= 500)
      reply.log.error({ req: this.view(request), res: reply, err: error }, error?.message);
    else reply.log.info({ res: reply, err: error }, error?.message);
  }

  override writeHeadError(error: Error, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    reply.log.warn({ req: this.view(request), res: reply, err: error }, error?.message);
  }

  private view(request: FastifyRequest): LoggedRequest {
    return new LoggedRequest(request.raw, this.clients);
  }
}

/** Distinct relaying instances whose line parts are kept (a cluster has a handful). */
const RELAYERS_KEPT = 64;

export class RequestLog {
  readonly metrics = new RequestMetrics();
  /** The shortcuts' access lines: the app's logger, whose parts are read once. */
  private readonly lines: AccessLines;
  /** relayed_from -> access lines of a child logger binding it, read once per relaying instance. */
  private readonly relayedLines = new Map<string, AccessLines>();

  constructor(
    private readonly log: FastifyBaseLogger,
    private readonly clients: ClientLookup,
    /** Whether answered requests get a log line (`log_requests`); metrics count them either way. */
    private readonly logLines: boolean,
    /** The ids fastify gives its requests (its `genReqId`), for the shortcuts' lines. */
    private readonly ids: RequestIds = new RequestIds(),
  ) {
    this.lines = accessLines(log);
  }

  /** Counts every request `app` answers (fastify writes its own log line, see OneLinePerRequest). */
  attach(app: FastifyInstance): void {
    // Callback style, not async: no promise per request on the hot path.
    app.addHook("onResponse", (request, reply, done) => {
      // The route pattern, never the raw URL: bounded label cardinality, no secrets in labels.
      this.metrics.record(
        request.routeOptions.url ?? "unmatched",
        request.method,
        reply.statusCode,
        reply.elapsedTime / 1000,
      );
      done();
    });
  }

  /** A request a shortcut answered on `route`; `startedAt` is `performance.now()` on its arrival. */
  shortcutAnswered(route: string, raw: IncomingMessage, status: number, startedAt: number): void {
    const ms = performance.now() - startedAt;
    this.metrics.record(route, raw.method ?? "", status, ms / 1000);
    // The id only for a line written: a request id no line names is a string made for nothing.
    if (this.logLines && this.lines.enabled())
      writeAccessLine(this.lines, raw, this.clients, status, ms, this.ids.next());
  }

  /**
   * A request another instance relayed here and this one served (src/cluster/channel.ts): the
   * same access line as any other, plus `relayed_from`, under the same `log_requests`. `ip` is
   * the client as the relaying instance saw it (its signed X-Forwarded-For): this socket is that
   * instance's. Not counted in the metrics: the instance the client reached counted it.
   */
  relayedAnswered(
    method: string,
    url: string,
    ip: string,
    relayedFrom: string,
    status: number,
    startedAt: number,
  ): void {
    if (!this.logLines) return;
    let lines = this.relayedLines.get(relayedFrom);
    if (!lines) {
      // Only a correctly signed request names a relaying instance; bounded all the same.
      if (this.relayedLines.size >= RELAYERS_KEPT) this.relayedLines.clear();
      lines = accessLines(this.log.child({ relayed_from: relayedFrom }));
      this.relayedLines.set(relayedFrom, lines);
    }
    if (lines.enabled())
      lines.write(method, pathOf(url), ip, status, performance.now() - startedAt, this.ids.next());
  }
}
