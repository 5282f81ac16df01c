/**
 * The bridge's sessions and child processes: opens a session (spawning a child, or joining the
 * shared one), ends it, reaps idle ones, and on close ends every child and waits for it. Also
 * the children that serve stateless (2026-07-28) requests: which era the child speaks is found
 * out once, with a `server/discover` probe; a 2026-07-28 child serves them itself, a 2025 child
 * is initialized by the bridge. In per-session mode they are pooled by what makes children
 * differ (the caller, and for a 2025 child the capabilities it was initialized with); in shared
 * mode one child of each era serves everyone (the 2025 one is the sessions' shared child).
 */
import { randomUUID } from "node:crypto";
import { type ChildExit, type ChildSpec, StdioChild } from "./child.js";
import { canonicalJson, type Envelope, META, MODERN_VERSIONS } from "./envelope.js";
import type { ListenHub } from "./listen.js";
import { Session } from "./session.js";
import { type Caller, Upstream } from "./upstream.js";

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
  /** Called once for every session that ends, however it ends. */
  onSessionEnded?: (id: string) => void;
  logger?: BridgeLogger;
}

interface Entry {
  session: Session;
  upstream: Upstream;
}

/** Which protocol a child speaks over stdio: 2026-07-28 natively, or only 2025 sessions. */
export type ChildEra = "modern" | "legacy";

/** The stateless requests of one kind of caller on one child: for idle accounting. */
export class PoolCaller implements Caller {
  pendingCount = 0;
  readonly ended = false;
  lastActivity = Date.now();
  touch(): void {
    this.lastActivity = Date.now();
  }
  // Stateless callers have no stream: the bridge routes what the child sends them itself.
  deliver(): void {}
  deliverRequest(): void {}
}

/** A child serving stateless requests. */
export interface StatelessBackend {
  upstream: Upstream;
  era: ChildEra;
  caller: PoolCaller;
  /** subscriptions/listen streams on a 2025 child. */
  hub?: ListenHub;
}

export class SessionRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly children = new Set<StdioChild>();
  /** Children the bridge itself ended: their exit is expected, not a crash. */
  private readonly stopped = new WeakSet<StdioChild>();
  private sharedUpstream: Upstream | null = null;
  private closing = false;
  /** Stateless backends by pool key. */
  private readonly pool = new Map<string, StatelessBackend>();
  private era: ChildEra | undefined;
  private eraProbe: Promise<ChildEra> | undefined;
  /** The probe's child, when it can serve the era it showed. */
  private spare: { upstream: Upstream; era: ChildEra } | undefined;

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

  /** Whether a live session has this id, whoever opened it. */
  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** Ids of the live sessions. */
  ids(): string[] {
    return [...this.entries.keys()];
  }

  /** The live session with this id if `owner` opened it, marked active; someone else's is left as it is. */
  get(id: string, owner: string): Entry | undefined {
    const entry = this.entries.get(id);
    if (!entry || entry.session.owner !== owner) return undefined;
    entry.session.touch();
    return entry;
  }

  /**
   * The child for a stateless request of `owner` with `envelope`, initialized when it is a 2025
   * child; null when the limit is reached or the bridge is closing. Rejects when the child cannot
   * be initialized.
   */
  async backend(owner: string, envelope: Envelope): Promise<StatelessBackend | null> {
    if (this.closing) return null;
    const era = await this.childEra(envelope);
    if (this.closing) return null;
    const key = this.opts.shared
      ? era
      : era === "modern"
        ? `modern\n${owner}`
        : `legacy\n${owner}\n${canonicalJson(envelope.capabilities)}`;
    let backend = this.pool.get(key);
    if (!backend) {
      if (!this.opts.shared && this.pool.size + this.entries.size >= this.opts.maxSessions) return null;
      let upstream: Upstream;
      if (this.opts.shared && era === "legacy") {
        this.sharedUpstream ??= this.takeSpare("legacy") ?? this.spawn();
        upstream = this.sharedUpstream;
      } else {
        upstream = this.takeSpare(era) ?? this.spawn(true);
      }
      backend = { upstream, era, caller: new PoolCaller() };
      this.pool.set(key, backend);
      // The probe's child serves the first caller, or no one (shared mode already had its child).
      const unused = this.spare;
      this.spare = undefined;
      if (unused) this.stop(unused.upstream.child);
    }
    backend.caller.touch();
    if (era === "legacy" && !backend.upstream.initialized) {
      try {
        await backend.upstream.ensureInitialized({
          capabilities: envelope.capabilities,
          clientInfo: envelope.clientInfo,
        });
      } catch (err) {
        if (this.pool.get(key) === backend) this.pool.delete(key);
        if (backend.upstream !== this.sharedUpstream) this.stop(backend.upstream.child);
        throw err;
      }
    }
    return backend;
  }

  /** The era of this server's children, probed once with `server/discover`. */
  private childEra(envelope: Envelope): Promise<ChildEra> {
    if (this.era) return Promise.resolve(this.era);
    this.eraProbe ??= this.probeEra(envelope).then((era) => {
      this.era = era;
      return era;
    });
    return this.eraProbe;
  }

  private async probeEra(envelope: Envelope): Promise<ChildEra> {
    const upstream = this.spawn(true);
    const meta: Record<string, unknown> = {
      [META.protocolVersion]: envelope.protocolVersion,
      [META.clientCapabilities]: envelope.capabilities,
    };
    if (envelope.clientInfo) meta[META.clientInfo] = envelope.clientInfo;
    const answer = await upstream.call("server/discover", { _meta: meta });
    const versions = (answer?.result as { supportedVersions?: unknown } | undefined)?.supportedVersions;
    if (Array.isArray(versions) && versions.some((v) => MODERN_VERSIONS.includes(v))) {
      this.spare = { upstream, era: "modern" };
      return "modern";
    }
    // A 2025 server that said "no such method" is still fresh for an initialize; one that said
    // nothing, or died, is not to be trusted with one.
    if (answer && upstream.child.running) this.spare = { upstream, era: "legacy" };
    else this.stop(upstream.child);
    return "legacy";
  }

  private takeSpare(era: ChildEra): Upstream | undefined {
    const spare = this.spare;
    if (!spare || spare.era !== era || !spare.upstream.child.running) return undefined;
    this.spare = undefined;
    return spare.upstream;
  }

  /** Every stateless backend (for keep-alives on their streams). */
  backends(): Iterable<StatelessBackend> {
    return this.pool.values();
  }

  /** End a session: fail its pending requests, close its stream, stop its own child. */
  end(id: string, reason: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    this.opts.onSessionEnded?.(id);
    entry.upstream.dropSession(entry.session, reason);
    entry.session.end();
    if (!this.opts.shared) this.stop(entry.upstream.child);
  }

  /**
   * End sessions idle for longer than the idle timeout (a request in flight is not idle), and
   * pooled stateless children without requests or listen streams for as long.
   */
  reap(now = Date.now()): void {
    for (const [id, { session }] of this.entries) {
      if (session.pendingCount > 0 || now - session.lastActivity < this.opts.idleTimeoutMs) continue;
      this.opts.logger?.info({ session: id }, "bridge session idle, ending it");
      this.end(id, "session ended after being idle");
    }
    if (this.opts.shared) return;
    for (const [key, backend] of this.pool) {
      const { upstream, caller, hub } = backend;
      if (upstream.pendingCount > 0 || (hub?.size ?? 0) > 0) continue;
      if (now - caller.lastActivity < this.opts.idleTimeoutMs) continue;
      this.pool.delete(key);
      this.stop(upstream.child);
    }
  }

  /** Keep-alive comment on every open GET stream and listen stream. */
  ping(): void {
    for (const { session } of this.entries.values()) session.ping();
    for (const backend of this.pool.values()) backend.hub?.ping();
  }

  /** PIDs of the live children, for tests and diagnostics. */
  childPids(): number[] {
    return [...this.children].map((c) => c.pid).filter((pid): pid is number => pid !== undefined);
  }

  /** End every session and child, and wait until every child has exited. */
  async closeAll(): Promise<void> {
    this.closing = true;
    for (const id of [...this.entries.keys()]) this.end(id, "bridge shutting down");
    for (const backend of this.pool.values()) backend.hub?.closeAll();
    this.pool.clear();
    const children = [...this.children];
    for (const child of children) this.stop(child);
    await Promise.all(children.map((c) => c.exited));
  }

  /** @param multiplexed several callers will share the child (ids remapped, one initialize) */
  private spawn(multiplexed = this.opts.shared): Upstream {
    const child = new StdioChild(this.opts.spec);
    this.children.add(child);
    const upstream: Upstream = new Upstream(child, {
      shared: multiplexed,
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
    if (this.spare?.upstream === upstream) this.spare = undefined;
    for (const [key, backend] of this.pool) {
      if (backend.upstream !== upstream) continue;
      this.pool.delete(key);
      backend.hub?.closeAll();
    }
    // Only sessions join an upstream's session set.
    const ended = [...upstream.sessions].map((s) => (s as Session).id);
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
