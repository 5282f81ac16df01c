/**
 * Routing between HTTP sessions and one child process. In per-session mode the child has one
 * session and messages pass through untouched. In shared mode several sessions share the child:
 * request ids and progress tokens are remapped per session and mapped back on the way out,
 * only the first `initialize` reaches the child, and unrelated notifications fan out.
 */
import type { ChildExit, StdioChild } from "./child.js";
import type { Exchange } from "./exchange.js";
import {
  ErrorCode,
  errorResponse,
  idKey,
  isNotification,
  isRequest,
  isResponse,
  type JsonRpcId,
  type JsonRpcMessage,
  progressTokenOf,
  withProgressToken,
} from "./jsonrpc.js";
import type { Session } from "./session.js";

interface Pending {
  session: Session;
  clientId: JsonRpcId;
  childId: JsonRpcId;
  exchange: Exchange;
  timer: NodeJS.Timeout;
  progressKey?: string;
  clientToken?: JsonRpcId;
  onResponse?: (msg: JsonRpcMessage) => void;
}

interface InitWaiter {
  id: JsonRpcId;
  exchange: Exchange;
  onResponse?: (msg: JsonRpcMessage) => void;
}

export interface UpstreamOptions {
  shared: boolean;
  requestTimeoutMs: number;
  /** Called once when the child has exited and every pending request was failed. */
  onExit: (exit: ChildExit) => void;
  /** Called for stdout lines that are not JSON-RPC. */
  onBadLine: (line: string) => void;
}

export class Upstream {
  readonly sessions = new Set<Session>();
  private readonly pending = new Map<string, Pending>();
  private readonly progress = new Map<string, Pending>();
  private nextId = 1;
  /** Shared mode: the first initialize result, and who waits for it while it is in flight. */
  private initResult: unknown;
  private initWaiters: InitWaiter[] | null = null;
  private initializedForwarded = false;
  private lastRequester: Session | null = null;

  constructor(
    readonly child: StdioChild,
    private readonly opts: UpstreamOptions,
  ) {
    child.listen((msg) => this.fromChild(msg), opts.onBadLine);
    void child.exited.then((exit) => this.childExited(exit));
  }

  /** Forward a client request; its response (or an error) is delivered through `exchange`. */
  request(
    session: Session,
    msg: JsonRpcMessage,
    exchange: Exchange,
    onResponse?: (msg: JsonRpcMessage) => void,
  ): void {
    const clientId = msg.id as JsonRpcId;
    if (this.opts.shared && msg.method === "initialize") {
      if (this.initResult !== undefined) {
        const reply = { jsonrpc: "2.0", id: clientId, result: this.initResult };
        onResponse?.(reply);
        exchange.respond(reply);
        return;
      }
      if (this.initWaiters) {
        this.initWaiters.push({ id: clientId, exchange, onResponse });
        return;
      }
      this.initWaiters = [];
      const first = onResponse;
      onResponse = (reply) => {
        this.settleInit(reply);
        first?.(reply);
      };
    }
    const childId = this.opts.shared ? this.nextId++ : clientId;
    const key = idKey(childId);
    if (this.pending.has(key)) {
      exchange.respond(
        errorResponse(clientId, ErrorCode.InvalidRequest, "a request with this id is in flight"),
      );
      return;
    }
    const timer = setTimeout(() => this.timeout(key), this.opts.requestTimeoutMs);
    timer.unref();
    const entry: Pending = { session, clientId, childId, exchange, timer, onResponse };
    let outgoing = this.opts.shared ? { ...msg, id: childId } : msg;
    const token = progressTokenOf(msg);
    if (token !== undefined) {
      const childToken = this.opts.shared ? `bridge-${this.nextId++}` : token;
      if (childToken !== token) outgoing = withProgressToken(outgoing, childToken);
      entry.progressKey = idKey(childToken);
      entry.clientToken = token;
      this.progress.set(entry.progressKey, entry);
    }
    this.pending.set(key, entry);
    session.pendingCount += 1;
    this.lastRequester = session;
    if (!this.child.send(outgoing)) {
      this.finish(key);
      const reply = errorResponse(clientId, ErrorCode.ServerError, "the MCP server process is not running");
      onResponse?.(reply);
      exchange.respond(reply);
    }
  }

  /** Forward a client notification. */
  notify(session: Session, msg: JsonRpcMessage): void {
    if (msg.method === "notifications/initialized" && this.opts.shared) {
      // The child was initialized once; later sessions' confirmations are not its business.
      if (this.initializedForwarded) return;
      this.initializedForwarded = true;
    }
    if (msg.method === "notifications/cancelled") {
      const params = (msg.params ?? {}) as { requestId?: unknown };
      const entry = [...this.pending.values()].find(
        (p) => p.session === session && idKey(p.clientId) === idKey(params.requestId),
      );
      if (entry) {
        // The client gave up: the request's HTTP answer ends without a reply for it.
        this.finish(idKey(entry.childId));
        entry.exchange.abandon();
        if (this.opts.shared) msg = { ...msg, params: { ...params, requestId: entry.childId } };
      }
    }
    this.child.send(msg);
  }

  /** Forward a client's response to a server-initiated request; its id is the child's own. */
  reply(msg: JsonRpcMessage): void {
    this.child.send(msg);
  }

  /** A session ends: its pending requests are failed (and cancelled in a shared child). */
  dropSession(session: Session, reason: string): void {
    this.sessions.delete(session);
    if (this.lastRequester === session) this.lastRequester = null;
    for (const [key, entry] of this.pending) {
      if (entry.session !== session) continue;
      this.finish(key);
      if (this.opts.shared && this.child.running) {
        this.child.send({
          jsonrpc: "2.0",
          method: "notifications/cancelled",
          params: { requestId: entry.childId, reason },
        });
      }
      entry.exchange.respond(errorResponse(entry.clientId, ErrorCode.ServerError, reason));
    }
  }

  private fromChild(msg: JsonRpcMessage): void {
    if (isResponse(msg)) {
      const key = idKey(msg.id);
      const entry = this.pending.get(key);
      if (!entry) return; // timed out, cancelled or never ours
      this.finish(key);
      const out = this.opts.shared ? { ...msg, id: entry.clientId } : msg;
      entry.onResponse?.(out);
      entry.exchange.respond(out);
    } else if (isRequest(msg)) {
      this.serverRequest(msg);
    } else if (isNotification(msg)) {
      this.serverNotification(msg);
    }
  }

  private serverRequest(msg: JsonRpcMessage): void {
    const sessions = [...this.sessions];
    const target =
      (this.lastRequester && !this.lastRequester.ended ? this.lastRequester : undefined) ??
      sessions.find((s) => s.hasStream) ??
      sessions[0];
    if (!target) {
      this.child.send(errorResponse(msg.id as JsonRpcId, ErrorCode.InternalError, "no client is connected"));
      return;
    }
    target.deliverRequest(msg);
  }

  private serverNotification(msg: JsonRpcMessage): void {
    if (msg.method === "notifications/progress") {
      const params = (msg.params ?? {}) as { progressToken?: unknown };
      const entry = this.progress.get(idKey(params.progressToken));
      if (entry) {
        const out =
          entry.clientToken !== undefined && entry.clientToken !== params.progressToken
            ? { ...msg, params: { ...params, progressToken: entry.clientToken } }
            : msg;
        // Progress belongs to its request: stream it on that POST, else on the GET stream.
        if (!entry.exchange.push(out)) entry.session.deliver(out);
        return;
      }
    }
    for (const session of this.sessions) session.deliver(msg);
  }

  private settleInit(reply: JsonRpcMessage): void {
    const waiters = this.initWaiters ?? [];
    this.initWaiters = null;
    if ("result" in reply) this.initResult = reply.result;
    for (const waiter of waiters) {
      const own =
        "result" in reply
          ? { jsonrpc: "2.0", id: waiter.id, result: reply.result }
          : { jsonrpc: "2.0", id: waiter.id, error: reply.error };
      waiter.onResponse?.(own);
      waiter.exchange.respond(own);
    }
  }

  private timeout(key: string): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    this.finish(key);
    const seconds = Math.round(this.opts.requestTimeoutMs / 1000);
    this.child.send({
      jsonrpc: "2.0",
      method: "notifications/cancelled",
      params: { requestId: entry.childId, reason: "request timed out" },
    });
    const reply = errorResponse(
      entry.clientId,
      ErrorCode.RequestTimeout,
      `Request timed out after ${seconds}s`,
    );
    entry.onResponse?.(reply);
    entry.exchange.respond(reply);
  }

  private finish(key: string): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.pending.delete(key);
    if (entry.progressKey) this.progress.delete(entry.progressKey);
    entry.session.pendingCount -= 1;
    // Idle time counts from the last answer, not from when a long request started.
    entry.session.touch();
  }

  private childExited(exit: ChildExit): void {
    const how = exit.spawnError
      ? `could not be started: ${exit.spawnError}`
      : exit.signal
        ? `exited on ${exit.signal}`
        : `exited with code ${exit.code}`;
    for (const [key, entry] of this.pending) {
      this.finish(key);
      const reply = errorResponse(entry.clientId, ErrorCode.ServerError, `MCP server process ${how}`);
      entry.onResponse?.(reply);
      entry.exchange.respond(reply);
    }
    this.opts.onExit(exit);
  }
}
