/**
 * One MCP session of the bridge: its GET stream for server-initiated messages, a short backlog
 * for messages sent while no stream is open, and the POSTs still waiting for answers.
 */
import type { ServerResponse } from "node:http";
import type { Exchange } from "./exchange.js";
import type { JsonRpcMessage } from "./jsonrpc.js";
import { writeSseEvent, writeSseHead, writeSsePing } from "./sse.js";
import type { Caller } from "./upstream.js";

/** Messages kept for a session without an open GET stream; older ones are dropped first. */
const BACKLOG_LIMIT = 100;

export class Session implements Caller {
  lastActivity = Date.now();
  ended = false;
  /** POSTs of this session that still wait for responses. */
  readonly exchanges = new Set<Exchange>();
  /** Requests of this session forwarded to the child and not answered yet. */
  pendingCount = 0;
  private stream: ServerResponse | null = null;
  private readonly backlog: JsonRpcMessage[] = [];

  /** @param owner who opened it (user and client, from the identity headers); only they may use it */
  constructor(
    readonly id: string,
    readonly owner: string,
  ) {}

  touch(): void {
    this.lastActivity = Date.now();
  }

  get hasStream(): boolean {
    return this.stream !== null;
  }

  /** Open the GET stream; false if one is open already (one per session). */
  attachStream(res: ServerResponse): boolean {
    if (this.stream) return false;
    this.stream = res;
    writeSseHead(res, { "mcp-session-id": this.id });
    for (const msg of this.backlog.splice(0)) writeSseEvent(res, msg);
    res.on("close", () => {
      if (this.stream === res) this.stream = null;
    });
    return true;
  }

  /** Send an unrelated server message on the GET stream, or keep it until one opens. */
  deliver(msg: JsonRpcMessage): void {
    if (this.ended) return;
    if (this.stream) {
      writeSseEvent(this.stream, msg);
      return;
    }
    this.backlog.push(msg);
    if (this.backlog.length > BACKLOG_LIMIT) this.backlog.shift();
  }

  /**
   * Send a server request: the GET stream if open, else an in-flight POST that can stream
   * (clients without a GET stream still get sampling/elicitation), else the backlog.
   */
  deliverRequest(msg: JsonRpcMessage): void {
    if (this.stream) {
      this.deliver(msg);
      return;
    }
    const open = [...this.exchanges].reverse();
    for (const exchange of open) if (exchange.push(msg)) return;
    this.deliver(msg);
  }

  ping(): void {
    if (this.stream) writeSsePing(this.stream);
  }

  /** Close the GET stream; the caller fails the pending requests. */
  end(): void {
    this.ended = true;
    this.backlog.length = 0;
    const stream = this.stream;
    this.stream = null;
    if (stream && !stream.writableEnded) stream.end();
  }
}
