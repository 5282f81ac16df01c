/**
 * Routing between callers and one child process. A caller is a 2025 session, or the stateless
 * (2026-07-28) requests the bridge serves from this child. In per-session mode the child has one
 * session and messages pass through untouched. When several callers share the child, request ids
 * and progress tokens are remapped and mapped back on the way out, the child is initialized once
 * (each session still told the version it asked for), and unrelated notifications fan out.
 */
import type { ChildExit, StdioChild } from "./child.js";
import { LATEST_LEGACY_VERSION, META, sessionVersion, severityOf } from "./envelope.js";
import type { Reply } from "./exchange.js";
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

/** Who a forwarded request came from; a Session is one. */
export interface Caller {
  pendingCount: number;
  readonly ended: boolean;
  touch(): void;
  /** An unrelated server message for this caller. */
  deliver(msg: JsonRpcMessage): void;
  /** A server-initiated request for this caller. */
  deliverRequest(msg: JsonRpcMessage): void;
}

/** How a stateless (2026-07-28) request is served while it runs on this child. */
export interface StatelessHooks {
  /** Least severe log level to pass on; no logs when undefined (2026-07-28: logs are opt-in). */
  logSeverity?: number;
  /** The child asked the client something (sampling, elicitation, roots) while this runs. */
  onChildRequest?(msg: JsonRpcMessage, entry: Pending): void;
  /** The response on its way out (a 2025 child's results get their `resultType`). */
  shape?(msg: JsonRpcMessage): JsonRpcMessage;
  /** A `subscriptions/listen`: never times out; the child's notifications for it go to its reply. */
  listen?: boolean;
}

/** A request forwarded to the child and not answered yet. */
export interface Pending {
  readonly caller: Caller;
  clientId: JsonRpcId;
  readonly childId: JsonRpcId;
  reply: Reply;
  timer?: NodeJS.Timeout;
  progressKey?: string;
  clientToken?: JsonRpcId;
  onResponse?: (msg: JsonRpcMessage) => void;
  hooks?: StatelessHooks;
  /** Called once the child is done with it, however it ended (answered, cancelled, timed out). */
  onFinish?: () => void;
}

/** What a child said about itself in answer to `initialize`. */
export interface InitializeResult {
  protocolVersion: string;
  capabilities?: Record<string, unknown>;
  serverInfo?: unknown;
  instructions?: string;
  [key: string]: unknown;
}

interface InternalCall {
  resolve(msg: JsonRpcMessage | undefined): void;
  timer: NodeJS.Timeout;
}

export interface UpstreamOptions {
  /** Several callers share this child: remap ids, initialize it once. */
  shared: boolean;
  requestTimeoutMs: number;
  /** Called once when the child has exited and every pending request was failed. */
  onExit: (exit: ChildExit) => void;
  /** Called for stdout lines that are not JSON-RPC. */
  onBadLine: (line: string) => void;
}

/** Ids of the bridge's own requests to the child; no client can pick one with this prefix. */
const INTERNAL_PREFIX = "mcp-gateway-bridge:";

const LIST_CHANGED = new Set([
  "notifications/tools/list_changed",
  "notifications/prompts/list_changed",
  "notifications/resources/list_changed",
  "notifications/resources/updated",
]);

export class Upstream {
  /** The 2025 sessions on this child. */
  readonly sessions = new Set<Caller>();
  /** Called with each list-changed and resource-updated notification (subscriptions/listen). */
  readonly changeListeners = new Set<(msg: JsonRpcMessage) => void>();
  private readonly pending = new Map<string, Pending>();
  private readonly progress = new Map<string, Pending>();
  private readonly internal = new Map<string, InternalCall>();
  private nextId = 1;
  private initResult: InitializeResult | undefined;
  private initializing: Promise<InitializeResult> | undefined;
  private childLogLevel: string | undefined;
  private lastRequester: Caller | null = null;

  constructor(
    readonly child: StdioChild,
    private readonly opts: UpstreamOptions,
  ) {
    child.listen((msg) => this.fromChild(msg), opts.onBadLine);
    void child.exited.then((exit) => this.childExited(exit));
  }

  /** The child's answer to `initialize`, once it gave one. */
  get initialized(): InitializeResult | undefined {
    return this.initResult;
  }

  /** Requests in flight (a listen counts while it is open). */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Forward a client request; its response (or an error) goes to `reply`. Returns the pending
   * entry, or undefined when the request was answered at once.
   */
  request(
    caller: Caller,
    msg: JsonRpcMessage,
    reply: Reply,
    onResponse?: (msg: JsonRpcMessage) => void,
    hooks?: StatelessHooks,
  ): Pending | undefined {
    const clientId = msg.id as JsonRpcId;
    if (this.opts.shared && msg.method === "initialize") {
      this.initializeSession(msg, reply, onResponse);
      return undefined;
    }
    const childId = this.opts.shared ? this.nextId++ : clientId;
    const key = idKey(childId);
    if (this.pending.has(key)) {
      reply.respond(errorResponse(clientId, ErrorCode.InvalidRequest, "a request with this id is in flight"));
      return undefined;
    }
    const entry: Pending = { caller, clientId, childId, reply, onResponse, hooks };
    if (!hooks?.listen) this.startTimer(entry);
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
    caller.pendingCount += 1;
    this.lastRequester = caller;
    if (!this.child.send(outgoing)) {
      this.finish(key);
      const out = errorResponse(clientId, ErrorCode.ServerError, "the MCP server process is not running");
      onResponse?.(out);
      reply.respond(out);
      return undefined;
    }
    return entry;
  }

  /**
   * Initialize the child once (the bridge's own request, asking for the newest session revision
   * with `params`' capabilities and client info) and send `notifications/initialized`.
   */
  ensureInitialized(params: unknown): Promise<InitializeResult> {
    if (this.initResult) return Promise.resolve(this.initResult);
    this.initializing ??= (async () => {
      const given = (params ?? {}) as Record<string, unknown>;
      const answer = await this.call("initialize", {
        ...given,
        protocolVersion: LATEST_LEGACY_VERSION,
        capabilities: given.capabilities ?? {},
        clientInfo: given.clientInfo ?? { name: "mcp-gateway-bridge", version: "1.0.0" },
      });
      const result = answer?.result as InitializeResult | undefined;
      if (!result || typeof result.protocolVersion !== "string") {
        this.initializing = undefined;
        const error = (answer?.error as { message?: string } | undefined)?.message ?? "no answer";
        throw new Error(`the MCP server did not initialize: ${error}`);
      }
      this.child.send({ jsonrpc: "2.0", method: "notifications/initialized" });
      this.initResult = result;
      return result;
    })();
    return this.initializing;
  }

  /**
   * Send the bridge's own request to the child; resolves with the child's response, or with
   * undefined when none came in time (or the child is gone).
   */
  call(
    method: string,
    params: unknown,
    timeoutMs = this.opts.requestTimeoutMs,
  ): Promise<JsonRpcMessage | undefined> {
    const id = `${INTERNAL_PREFIX}${this.nextId++}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.internal.delete(id);
        resolve(undefined);
      }, timeoutMs);
      timer.unref();
      this.internal.set(id, { resolve, timer });
      if (!this.child.send({ jsonrpc: "2.0", id, method, params })) {
        clearTimeout(timer);
        this.internal.delete(id);
        resolve(undefined);
      }
    });
  }

  /** Bring the child's log level to `level` (2025 children: `logging/setLevel`) when it differs. */
  applyLogLevel(level: string): void {
    if (this.childLogLevel === level || !this.initResult?.capabilities?.logging) return;
    this.childLogLevel = level;
    void this.call("logging/setLevel", { level });
  }

  /** Forward a client notification. */
  notify(caller: Caller, msg: JsonRpcMessage): void {
    // A shared child was initialized once, by the bridge; sessions' confirmations are not its business.
    if (msg.method === "notifications/initialized" && this.opts.shared) return;
    if (msg.method === "notifications/cancelled") {
      const params = (msg.params ?? {}) as { requestId?: unknown };
      const entry = [...this.pending.values()].find(
        (p) => p.caller === caller && idKey(p.clientId) === idKey(params.requestId),
      );
      if (entry) {
        // The client gave up: the request's HTTP answer ends without a reply for it.
        this.finish(idKey(entry.childId));
        entry.reply.abandon();
        if (this.opts.shared) msg = { ...msg, params: { ...params, requestId: entry.childId } };
      }
    }
    this.child.send(msg);
  }

  /** The client of a pending request gave up on it: tell the child, answer nothing. */
  cancel(entry: Pending, reason: string): void {
    if (this.pending.get(idKey(entry.childId)) !== entry) return;
    this.finish(idKey(entry.childId));
    entry.reply.abandon();
    this.child.send({
      jsonrpc: "2.0",
      method: "notifications/cancelled",
      params: { requestId: entry.childId, reason },
    });
  }

  /** Forward a client's response to a server-initiated request; its id is the child's own. */
  reply(msg: JsonRpcMessage): void {
    this.child.send(msg);
  }

  /** Hand a pending request's answer to someone else (a multi-round-trip request between rounds). */
  redirect(entry: Pending, reply: Reply, clientId: JsonRpcId = entry.clientId, timed = true): void {
    entry.reply = reply;
    entry.clientId = clientId;
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = undefined;
    if (timed && this.pending.get(idKey(entry.childId)) === entry) this.startTimer(entry);
  }

  /** Whether the child still works on this request. */
  isPending(entry: Pending): boolean {
    return this.pending.get(idKey(entry.childId)) === entry;
  }

  /** A session ends: its pending requests are failed (and cancelled in a shared child). */
  dropSession(caller: Caller, reason: string): void {
    this.sessions.delete(caller);
    if (this.lastRequester === caller) this.lastRequester = null;
    for (const [key, entry] of this.pending) {
      if (entry.caller !== caller) continue;
      this.finish(key);
      if (this.opts.shared && this.child.running) {
        this.child.send({
          jsonrpc: "2.0",
          method: "notifications/cancelled",
          params: { requestId: entry.childId, reason },
        });
      }
      entry.reply.respond(errorResponse(entry.clientId, ErrorCode.ServerError, reason));
    }
  }

  /** A session's initialize on a shared child: answered by the bridge with the session's own version. */
  private initializeSession(
    msg: JsonRpcMessage,
    reply: Reply,
    onResponse?: (msg: JsonRpcMessage) => void,
  ): void {
    const clientId = msg.id as JsonRpcId;
    const requested = (msg.params as { protocolVersion?: unknown } | undefined)?.protocolVersion;
    this.ensureInitialized(msg.params).then(
      (result) => {
        const out = {
          jsonrpc: "2.0",
          id: clientId,
          result: { ...result, protocolVersion: sessionVersion(requested, result.protocolVersion) },
        };
        onResponse?.(out);
        reply.respond(out);
      },
      (err: Error) => {
        const out = errorResponse(clientId, ErrorCode.InternalError, err.message);
        onResponse?.(out);
        reply.respond(out);
      },
    );
  }

  private startTimer(entry: Pending): void {
    const key = idKey(entry.childId);
    entry.timer = setTimeout(() => this.timeout(key), this.opts.requestTimeoutMs);
    entry.timer.unref();
  }

  private fromChild(msg: JsonRpcMessage): void {
    if (isResponse(msg)) {
      if (typeof msg.id === "string" && msg.id.startsWith(INTERNAL_PREFIX)) {
        const call = this.internal.get(msg.id);
        if (!call) return;
        this.internal.delete(msg.id);
        clearTimeout(call.timer);
        call.resolve(msg);
        return;
      }
      const key = idKey(msg.id);
      const entry = this.pending.get(key);
      if (!entry) return; // timed out, cancelled or never ours
      this.finish(key);
      let out = this.opts.shared ? { ...msg, id: entry.clientId } : msg;
      if (entry.hooks?.shape) out = entry.hooks.shape(out);
      entry.onResponse?.(out);
      entry.reply.respond(out);
    } else if (isRequest(msg)) {
      this.serverRequest(msg);
    } else if (isNotification(msg)) {
      this.serverNotification(msg);
    }
  }

  /**
   * The request the child most likely asks something for: the newest one that can carry a
   * question (a session's, or a stateless one whose method has input_required rounds).
   */
  private newestAsking(): Pending | undefined {
    let newest: Pending | undefined;
    for (const entry of this.pending.values()) if (!entry.hooks || entry.hooks.onChildRequest) newest = entry;
    return newest;
  }

  private serverRequest(msg: JsonRpcMessage): void {
    const newest = this.newestAsking();
    if (newest?.hooks?.onChildRequest) {
      newest.hooks.onChildRequest(msg, newest);
      return;
    }
    const sessions = [...this.sessions];
    const target =
      newest?.caller ??
      (this.lastRequester && !this.lastRequester.ended && this.sessions.has(this.lastRequester)
        ? this.lastRequester
        : undefined) ??
      sessions[0];
    if (target) {
      target.deliverRequest(msg);
    } else if (msg.method === "ping") {
      this.child.send({ jsonrpc: "2.0", id: msg.id, result: {} });
    } else {
      this.refuse(msg, "no client is connected");
    }
  }

  private refuse(msg: JsonRpcMessage, why: string): void {
    this.child.send(errorResponse(msg.id as JsonRpcId, ErrorCode.InternalError, why));
  }

  private serverNotification(msg: JsonRpcMessage): void {
    const params = (msg.params ?? {}) as { progressToken?: unknown; level?: unknown; _meta?: unknown };
    if (msg.method === "notifications/progress") {
      const entry = this.progress.get(idKey(params.progressToken));
      if (entry) {
        const out =
          entry.clientToken !== undefined && entry.clientToken !== params.progressToken
            ? { ...msg, params: { ...params, progressToken: entry.clientToken } }
            : msg;
        // Progress belongs to its request: stream it on that POST, else on the GET stream.
        if (!entry.reply.push(out)) entry.caller.deliver(out);
        return;
      }
    }
    const subscription = (params._meta as Record<string, unknown> | undefined)?.[META.subscriptionId];
    if (subscription !== undefined) {
      // A 2026-07-28 child's notification for one open subscriptions/listen.
      const entry = this.pending.get(idKey(subscription));
      if (entry?.hooks?.listen) {
        const meta = { ...(params._meta as object), [META.subscriptionId]: entry.clientId };
        entry.reply.push({ ...msg, params: { ...params, _meta: meta } });
      }
      return;
    }
    if (msg.method === "notifications/message") {
      const severity = severityOf(params.level) ?? 0;
      for (const entry of this.pending.values()) {
        const wanted = entry.hooks?.logSeverity;
        if (wanted !== undefined && severity >= wanted) entry.reply.push(msg);
      }
    } else if (LIST_CHANGED.has(msg.method as string)) {
      for (const listener of this.changeListeners) listener(msg);
    }
    for (const session of this.sessions) session.deliver(msg);
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
    const out = errorResponse(
      entry.clientId,
      ErrorCode.RequestTimeout,
      `Request timed out after ${seconds}s`,
    );
    entry.onResponse?.(out);
    entry.reply.respond(out);
  }

  private finish(key: string): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    if (entry.timer) clearTimeout(entry.timer);
    this.pending.delete(key);
    if (entry.progressKey) this.progress.delete(entry.progressKey);
    entry.caller.pendingCount -= 1;
    entry.onFinish?.();
    // Idle time counts from the last answer, not from when a long request started.
    entry.caller.touch();
  }

  private childExited(exit: ChildExit): void {
    const how = exit.spawnError
      ? `could not be started: ${exit.spawnError}`
      : exit.signal
        ? `exited on ${exit.signal}`
        : `exited with code ${exit.code}`;
    for (const [key, entry] of this.pending) {
      this.finish(key);
      const out = errorResponse(entry.clientId, ErrorCode.ServerError, `MCP server process ${how}`);
      entry.onResponse?.(out);
      entry.reply.respond(out);
    }
    for (const call of this.internal.values()) {
      clearTimeout(call.timer);
      call.resolve(undefined);
    }
    this.internal.clear();
    this.opts.onExit(exit);
  }
}
