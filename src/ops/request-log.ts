/**
 * What is recorded when a request is answered, whether fastify answered it or a shortcut did
 * (src/http/server.ts): the request metrics, and one access-log line at info in the same shape
 * for both. fastify's two lines per request ("incoming request", "request completed") become
 * that one line, which carries the request too.
 */
import type { IncomingMessage } from "node:http";
import proxyAddr from "@fastify/proxy-addr";
import {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from "fastify";
import { RequestMetrics } from "./request-metrics.js";

const COMPLETED = "request completed";

/**
 * fastify's request log lines, one per request (none when `enabled` is false); its error and
 * not-found lines stay as they are.
 */
export class OneLinePerRequest extends LogController {
  constructor(private readonly enabled: boolean) {
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
    const line = { req: request, res: reply, responseTime: reply.elapsedTime };
    if (error) reply.log.error({ ...line, err: error }, "request errored");
    else if (this.enabled) reply.log.info(line, COMPLETED);
  }
}

type TrustProxy = boolean | string | string[];
type Trust = (addr: string, i: number) => boolean;

/** fastify's reading of `trustProxy`, so a shortcut's line names the same client address. */
function trustFunction(trust: TrustProxy): Trust | undefined {
  if (trust === false) return undefined;
  if (trust === true) return () => true;
  return proxyAddr.compile(typeof trust === "string" ? trust.split(",").map((s) => s.trim()) : trust);
}

/** The fields the request serializer reads, worked out only if the line is written. */
class RawRequestView {
  constructor(
    private readonly raw: IncomingMessage,
    private readonly trust: Trust | undefined,
  ) {}
  get method(): string {
    return this.raw.method ?? "";
  }
  get url(): string {
    return this.raw.url ?? "";
  }
  get ip(): string | undefined {
    if (!this.trust) return this.raw.socket.remoteAddress;
    const chain = proxyAddr.all(this.raw, this.trust);
    return chain[chain.length - 1];
  }
}

export class RequestLog {
  readonly metrics = new RequestMetrics();
  private readonly trust: Trust | undefined;

  constructor(
    private readonly log: FastifyBaseLogger,
    trustProxy: TrustProxy,
    /** Whether answered requests get a log line (`log_requests`); metrics count them either way. */
    private readonly logLines: boolean,
  ) {
    this.trust = trustFunction(trustProxy);
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
    if (!this.logLines) return;
    this.log.info(
      { req: new RawRequestView(raw, this.trust), res: { statusCode: status }, responseTime: ms },
      COMPLETED,
    );
  }
}
