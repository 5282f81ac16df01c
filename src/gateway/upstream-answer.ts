/**
 * One upstream answer on its way to the client, as an undici dispatch handler: the status and
 * headers are written as they arrive (a JSON answer to tracked requests waits for its first
 * byte, so an upstream dying before that is still an error status with the ids), each chunk
 * is written to the client as undici hands it over, and the upstream is paused while the
 * client's socket is full. It replaces `request()` + a body Readable + `pipe`: a stream, a
 * promise, an AsyncResource and their listeners per call, which with a slow upstream (the
 * gateway idle and its caches cold between calls) cost the proxied call more than anything
 * the gateway decides (bench/RESULTS.md, "Proxy CPU with the SDK upstream").
 */
import type { OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { Transform, Writable } from "node:stream";
import type { FastifyBaseLogger } from "fastify";
import type { Dispatcher } from "undici";
import type { RequestSpan } from "../ops/tracing.js";
import { clientResponseHeaders } from "./headers.js";
import { type JsonRpcId, requestIds, SseAnswers } from "./unanswered.js";

type AnswerHeaders = Record<string, string | string[] | undefined>;

/** What the relay needs of the request it answers (proxy.ts fills it in). */
export interface RelayedRequest {
  service: string;
  method: string;
  /** The body as sent, when it was read whole (its request ids can then be answered). */
  sent: Buffer | undefined;
  log: FastifyBaseLogger;
  span?: RequestSpan;
  /** The gateway's own headers under the upstream's (exchange.responseHeaders). */
  responseHeaders(): OutgoingHttpHeaders;
  /** Just before the answer is written to the client directly (exchange.takeOver). */
  takeOver(): void;
  /** A stream the answer's body goes through, chosen from its status and headers (ForwardPlan.answer). */
  rewrite?(status: number, headers: AnswerHeaders): Transform | undefined;
  /** The upstream failed before anything went to the client: `headersCame` tells how far it got. */
  failed(err: Error, headersCame: boolean, ids: readonly JsonRpcId[]): void;
  /** The answer is on its way (headers written) or the failure answered: forward() resolves. */
  settled(): void;
}

/** Where the relay is: before the headers, holding them for the first byte, streaming, or done. */
const WAITING = 0;
const HELD = 1;
const STREAMING = 2;
const DONE = 3;

export class UpstreamAnswer implements Dispatcher.DispatchHandler {
  private state = WAITING;
  private controller: Dispatcher.DispatchController | undefined;
  /** The client left: the upstream request is aborted as soon as there is one to abort. */
  cancelled = false;
  private status = 0;
  private headers: OutgoingHttpHeaders | undefined;
  /** Where chunks go: the client's response, or the plan's rewrite stream in front of it. */
  private out: Writable;
  private answers: SseAnswers | undefined;
  private rewrite: Transform | undefined;
  private readonly startedAt: number;
  /** Resumes the upstream once `out` drained (bound once, used on every pause). */
  private readonly onDrain = () => this.controller?.resume();

  constructor(
    private readonly req: RelayedRequest,
    private readonly res: ServerResponse,
  ) {
    this.out = res;
    this.startedAt = req.span ? performance.now() : 0;
  }

  /** The client went away: release the upstream request (now, or once it is dispatched). */
  cancel(): void {
    this.cancelled = true;
    this.controller?.abort(new Error("the client went away"));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.cancelled) controller.abort(new Error("the client went away"));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, status: number, upstream: AnswerHeaders): void {
    if (status < 200) return; // 1xx: Node answers the client's Expect itself
    const { req, res } = this;
    req.span?.set({ "gateway.upstream.latency_ms": Math.round(performance.now() - this.startedAt) });
    const headers = clientResponseHeaders(upstream, req.responseHeaders());
    const eventStream = String(upstream["content-type"] ?? "").startsWith("text/event-stream");
    this.rewrite = req.rewrite?.(status, upstream);
    // A rewritten answer has a length of its own, known only at its end.
    if (this.rewrite) delete headers["content-length"];
    // Tell a buffering proxy in front of us (nginx) to pass events through at once.
    if (eventStream) headers["x-accel-buffering"] = "no";
    const empty = status === 204 || status === 304 || req.method === "HEAD";
    this.status = status;
    this.headers = headers;
    // A JSON answer to tracked requests: its status waits for its first byte, so an upstream
    // dying before that is still a 502 with the ids (onResponseError). Usually the bytes came
    // with the headers, and onResponseData follows at once.
    if (req.sent && !eventStream && !empty) {
      this.state = HELD;
      return;
    }
    this.writeHead();
    if (empty) {
      // Nothing goes to the client; the upstream's bytes (if any) are read and dropped.
      this.state = DONE;
      res.end();
      return;
    }
    // An SSE client must see the headers before the first event; a JSON reply goes out whole.
    if (eventStream) {
      res.flushHeaders();
      const ids = req.sent ? requestIds(req.sent) : [];
      if (ids.length > 0) this.answers = new SseAnswers(ids);
    }
    this.stream();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.state === HELD) {
      // The held JSON answer's first byte: its headers go out and it streams.
      this.writeHead();
      this.stream();
    }
    if (this.state !== STREAMING) return;
    this.answers?.see(chunk);
    if (!this.out.write(chunk)) {
      controller.pause();
      this.out.once("drain", this.onDrain);
    }
  }

  onResponseEnd(): void {
    if (this.state === HELD) {
      // An empty JSON answer: the headers, then the end.
      this.writeHead();
      this.state = DONE;
      this.res.end();
      return;
    }
    if (this.state !== STREAMING) return;
    this.state = DONE;
    this.out.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    const { req, res } = this;
    const state = this.state;
    this.state = DONE;
    if (state === WAITING || state === HELD) {
      if (!this.cancelled && !res.destroyed)
        req.failed(err, state === HELD, req.sent ? requestIds(req.sent) : []);
      req.settled();
      return;
    }
    if (state !== STREAMING) return;
    // Upstream broke mid-stream, or the client left. A client still waiting on requests of
    // this stream hears why (rather than timing out); otherwise there is no one to tell.
    if (!this.cancelled) req.log.debug({ service: req.service, err }, "proxied stream ended early");
    const answers = this.answers;
    if (this.cancelled || !answers || answers.settled) res.destroy();
    else res.end(answers.closing(`The upstream of ${req.service} closed the connection before answering`));
  }

  /** From here on chunks go to the client, through the plan's rewrite if it has one. */
  private stream(): void {
    this.state = STREAMING;
    const rewrite = this.rewrite;
    if (!rewrite) return;
    const { req, res } = this;
    rewrite.once("error", (err) => {
      req.log.warn({ service: req.service, err }, "upstream answer could not be read");
      res.destroy();
    });
    rewrite.pipe(res);
    this.out = rewrite;
  }

  /**
   * Taken over (fastify's reply hijacked) so the headers can be flushed now: a client opening
   * an SSE stream must see the 200 before the first event, which may be minutes away.
   * onResponse hooks still run. forward() resolves here.
   */
  private writeHead(): void {
    this.req.takeOver();
    this.res.writeHead(this.status, this.headers);
    this.req.settled();
  }
}
