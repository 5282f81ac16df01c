/**
 * The bridge's sessions and child processes: opens a session (spawning a child, or joining the
 * shared one), ends it, reaps idle ones, and on close ends every child and waits for it.
 */
import { randomUUID } from "node:crypto";
import { type ChildExit, type ChildSpec, StdioChild } from "./child.js";
import { Session } from "./session.js";
import { Upstream } from "./upstream.js";

/** The pino-like logger the bridge writes to (pino's `(obj, msg)` call shape). */
export interface BridgeLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface RegistryOptions {
  spec: ChildSpec;
  shared: boolean;
  maxSessions: number;
  idleTimeoutMs: number;
  requestTimeoutMs: number;
  logger?: BridgeLogger;
}

interface Entry {
  session: Session;
  upstream: Upstream;
}

export class SessionRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly children = new Set<StdioChild>();
  /** Children the bridge itself ended: their exit is expected, not a crash. */
  private readonly stopped = new WeakSet<StdioChild>();
  private sharedUpstream: Upstream | null = null;
  private closing = false;

  constructor(private readonly opts: RegistryOptions) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * Start a session for `owner` (who opened it: user and client); null when the session limit is
   * reached or the bridge is closing.
   */
  open(owner: string): Entry | null {
    if (this.closing || this.entries.size >= this.opts.maxSessions) return null;
    const session = new Session(randomUUID(), owner);
    let upstream = this.sharedUpstream;
    if (!upstream) {
      upstream = this.spawn();
      if (this.opts.shared) this.sharedUpstream = upstream;
    }
    upstream.sessions.add(session);
    const entry = { session, upstream };
    this.entries.set(session.id, entry);
    return entry;
  }

  /** The live session with this id if `owner` opened it, marked active; someone else's is left as it is. */
  get(id: string, owner: string): Entry | undefined {
    const entry = this.entries.get(id);
    if (!entry || entry.session.owner !== owner) return undefined;
    entry.session.touch();
    return entry;
  }

  /** End a session: fail its pending requests, close its stream, stop its own child. */
  end(id: string, reason: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    entry.upstream.dropSession(entry.session, reason);
    entry.session.end();
    if (!this.opts.shared) this.stop(entry.upstream.child);
  }

  /** End sessions idle for longer than the idle timeout (a request in flight is not idle). */
  reap(now = Date.now()): void {
    for (const [id, { session }] of this.entries) {
      if (session.pendingCount > 0 || now - session.lastActivity < this.opts.idleTimeoutMs) continue;
      this.opts.logger?.info({ session: id }, "bridge session idle, ending it");
      this.end(id, "session ended after being idle");
    }
  }

  /** Keep-alive comment on every open GET stream. */
  ping(): void {
    for (const { session } of this.entries.values()) session.ping();
  }

  /** PIDs of the live children, for tests and diagnostics. */
  childPids(): number[] {
    return [...this.children].map((c) => c.pid).filter((pid): pid is number => pid !== undefined);
  }

  /** End every session and child, and wait until every child has exited. */
  async closeAll(): Promise<void> {
    this.closing = true;
    for (const id of [...this.entries.keys()]) this.end(id, "bridge shutting down");
    const children = [...this.children];
    for (const child of children) this.stop(child);
    await Promise.all(children.map((c) => c.exited));
  }

  private spawn(): Upstream {
    const child = new StdioChild(this.opts.spec);
    this.children.add(child);
    const upstream: Upstream = new Upstream(child, {
      shared: this.opts.shared,
      requestTimeoutMs: this.opts.requestTimeoutMs,
      onExit: (exit) => this.childExited(upstream, exit),
      onBadLine: (line) =>
        this.opts.logger?.warn(
          { pid: child.pid, line: line.slice(0, 200) },
          "MCP server wrote a non-JSON-RPC line",
        ),
    });
    return upstream;
  }

  private stop(child: StdioChild): void {
    this.stopped.add(child);
    void child.kill();
  }

  private childExited(upstream: Upstream, exit: ChildExit): void {
    const child = upstream.child;
    const expected = this.stopped.has(child) || this.closing;
    this.children.delete(child);
    if (this.sharedUpstream === upstream) this.sharedUpstream = null;
    const ended = [...upstream.sessions].map((s) => s.id);
    for (const id of ended) this.end(id, "the MCP server process has exited");
    if (expected) return;
    this.opts.logger?.warn(
      {
        pid: child.pid,
        code: exit.code,
        signal: exit.signal,
        spawnError: exit.spawnError,
        sessions: ended,
        stderr: exit.stderrTail.join("\n"),
      },
      "MCP server process exited; its sessions are ended",
    );
  }
}
