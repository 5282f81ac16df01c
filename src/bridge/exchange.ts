/**
 * One POST that carries requests, waiting for their responses. It answers with a JSON body
 * when the client accepts JSON and nothing needs streaming; it turns into an SSE stream as soon
 * as a message related to its requests (progress, a server request) must go out first.
 */
import type { ServerResponse } from "node:http";
import type { JsonRpcMessage } from "./jsonrpc.js";
import { writeSseEvent, writeSseHead, writeSsePing } from "./sse.js";

/** Where the answer to one forwarded request goes. */
export interface Reply {
  /** Send a related notification or server request now; false if it cannot go out. */
  push(msg: JsonRpcMessage): boolean;
  /** Deliver the response. */
  respond(msg: JsonRpcMessage): void;
  /** The request was cancelled: no response will come. */
  abandon(): void;
}

/**
 * The reply of a request whose client is away (a multi-round-trip request between rounds): keeps
 * the response, if one comes, for the client's retry.
 */
export class HeldReply implements Reply {
  response: JsonRpcMessage | undefined;
  push(): boolean {
    return false;
  }
  respond(msg: JsonRpcMessage): void {
    this.response ??= msg;
  }
  abandon(): void {}
}

export class Exchange implements Reply {
  private mode: "waiting" | "sse" | "done" = "waiting";
  private readonly collected: JsonRpcMessage[] = [];
  private remaining: number;

  /**
   * @param res the HTTP response to answer on
   * @param expected how many responses complete this exchange
   * @param batch whether the POST body was an array (a JSON answer is then an array too)
   * @param accepts what the client's Accept header allows
   * @param headers extra headers for the answer (Mcp-Session-Id)
   * @param statusOf the HTTP status of a JSON answer of one message (2026-07-28 maps some
   *   JSON-RPC errors to 4xx); 200 when absent
   */
  constructor(
    private readonly res: ServerResponse,
    expected: number,
    private readonly batch: boolean,
    private readonly accepts: { json: boolean; sse: boolean },
    private readonly headers: Record<string, string>,
    private readonly statusOf?: (msg: JsonRpcMessage) => number,
  ) {
    this.remaining = expected;
  }

  /** True once every response went out, or the client went away. */
  get finished(): boolean {
    return this.mode === "done" || this.res.destroyed;
  }

  /** True once every response went out (not merely because the client went away). */
  get answered(): boolean {
    return this.mode === "done";
  }

  /** Whether server-initiated messages can be written into this exchange. */
  get canStream(): boolean {
    return this.accepts.sse && !this.finished;
  }

  /** Send a related notification or server request now; false if this exchange cannot stream. */
  push(msg: JsonRpcMessage): boolean {
    if (!this.canStream) return false;
    this.startStream();
    writeSseEvent(this.res, msg);
    return true;
  }

  /** Deliver one response; the last one ends the HTTP answer. */
  respond(msg: JsonRpcMessage): void {
    if (this.mode === "done") return;
    this.remaining -= 1;
    if (this.mode === "sse") writeSseEvent(this.res, msg);
    else this.collected.push(msg);
    if (this.remaining > 0) return;
    if (this.mode === "sse") {
      this.end();
      return;
    }
    if (this.accepts.json) {
      const body = JSON.stringify(this.batch ? this.collected : this.collected[0]);
      if (!this.res.destroyed) {
        const status =
          !this.batch && this.statusOf ? this.statusOf(this.collected[0] as JsonRpcMessage) : 200;
        this.res.writeHead(status, {
          ...this.headers,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
        });
        this.res.end(body);
      }
      this.mode = "done";
      return;
    }
    this.startStream();
    this.end();
  }

  /** A keep-alive comment, if this exchange is a stream. */
  ping(): void {
    if (this.mode === "sse") writeSsePing(this.res);
  }

  /** A request of this exchange was cancelled by the client: no response will come for it. */
  abandon(): void {
    if (this.mode === "done") return;
    this.remaining -= 1;
    if (this.remaining > 0) return;
    if (this.mode === "waiting" && this.collected.length > 0) {
      this.remaining = 1;
      const last = this.collected.pop() as JsonRpcMessage;
      this.respond(last);
      return;
    }
    if (this.mode === "waiting" && !this.res.destroyed) {
      this.mode = "done";
      this.res.writeHead(202, this.headers).end();
      return;
    }
    this.end();
  }

  private startStream(): void {
    if (this.mode !== "waiting") return;
    this.mode = "sse";
    if (!this.res.destroyed) writeSseHead(this.res, this.headers);
    for (const msg of this.collected.splice(0)) writeSseEvent(this.res, msg);
  }

  private end(): void {
    this.mode = "done";
    if (!this.res.destroyed) this.res.end();
  }
}
