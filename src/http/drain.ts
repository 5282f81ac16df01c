/**
 * A graceful stop for the gateway's listeners (SIGTERM; a rolling restart): first say so
 * (/readyz answers 503 "draining" from the first moment, and for `drain_delay` the listeners
 * still accept and serve as usual, so a load balancer's health check takes the instance out
 * before anything is refused), then stop accepting
 * connections, end every open GET event stream cleanly (the client sees the
 * stream end and reconnects, through the load balancer, to another instance), let the other
 * in-flight requests finish, and close each connection once its answer is out. Nothing is
 * counted per request: the connections are tracked, and a connection's current response is
 * Node's own `socket._httpMessage`.
 */
import type { Server, ServerResponse } from "node:http";
import net, { type Socket } from "node:net";

/** What Node keeps on a server-side socket and a response, read here (stable since Node 0.x). */
type TrackedSocket = Socket & { _httpMessage?: ServerResponse | null };
type SentResponse = ServerResponse & { _header?: string | null };

/** How often the streams are swept again (new ones may open on kept connections). */
const SWEEP_MS = 100;

/** Servers whose drain has begun: their readiness check answers "draining" (ops/routes.ts). */
const drainingServers = new WeakSet<Server>();
/** How long each server keeps accepting once its drain has begun (config `drain_delay`). */
const announceFor = new WeakMap<Server, number>();

/** Whether this server's drain has begun. */
export function serverDraining(server: Server): boolean {
  return drainingServers.has(server);
}

/** Keep accepting for `ms` after a drain begins, while the readiness check says "draining". */
export function announceDrain(server: Server, ms: number): void {
  announceFor.set(server, Math.max(0, ms));
}

export class Drain {
  private readonly sockets = new Set<TrackedSocket>();
  private readonly servers: Server[] = [];
  private draining = false;

  /** Track this server's connections from now on. */
  add(server: Server): void {
    this.servers.push(server);
    server.on("connection", (socket: TrackedSocket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
  }

  /** Requests still being answered (SSE streams included until they are ended). */
  inFlight(): number {
    let n = 0;
    for (const socket of this.sockets) if (busy(socket)) n++;
    return n;
  }

  /**
   * Drain every tracked server; resolves true when every request finished within `timeoutMs`,
   * false when some were still running (the caller then cuts them).
   */
  async drain(timeoutMs: number): Promise<boolean> {
    this.draining = true;
    for (const server of this.servers) drainingServers.add(server);
    const deadline = Date.now() + timeoutMs;
    // The announcement comes out of shutdown_timeout, and leaves room for the drain itself.
    const announce = Math.min(
      timeoutMs / 2,
      Math.max(0, ...this.servers.map((s) => announceFor.get(s) ?? 0)),
    );
    if (announce > 0) await new Promise((r) => setTimeout(r, announce));
    // Stop accepting, but not http.Server#close: it also closes every connection without a
    // request in progress, and one just accepted may be carrying a request not yet read, which a
    // load balancer does not send again if it is a POST. Those are served (then closed) instead.
    for (const server of this.servers) if (server.listening) net.Server.prototype.close.call(server);
    for (;;) {
      this.sweep();
      if (this.inFlight() === 0) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, Math.min(SWEEP_MS, Math.max(1, deadline - Date.now()))));
    }
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** End open event streams; close every other connection as soon as its answer is out. */
  private sweep(): void {
    for (const socket of this.sockets) {
      const res = socket._httpMessage;
      // No request on it: left alone (one may be on its way), and cut when the app closes.
      if (!res || res.writableEnded) continue;
      if (isEventStream(res)) {
        endStream(res);
      } else if (!res.headersSent) {
        res.shouldKeepAlive = false;
      }
      closeAfter(res, socket);
    }
  }
}

function busy(socket: TrackedSocket): boolean {
  const res = socket._httpMessage;
  return Boolean(res && !res.writableFinished && !socket.destroyed);
}

/**
 * A standalone event stream (the GET of Streamable HTTP): nothing is owed on it, so it can end
 * now. A POST answered as a stream carries responses still to come: it is in flight like any
 * other request.
 */
function isEventStream(res: SentResponse): boolean {
  if (!res.headersSent || res.req?.method !== "GET") return false;
  const head = res._header ?? "";
  return /\r\ncontent-type:\s*text\/event-stream/i.test(head);
}

const closing = new WeakSet<ServerResponse>();

/** The connection ends once this response is complete (no keep-alive for a draining server). */
function closeAfter(res: ServerResponse, socket: Socket): void {
  if (closing.has(res)) return;
  closing.add(res);
  res.once("finish", () => socket.end());
}

/**
 * Ends an SSE response with its terminating chunk, however its writer goes on: whatever is
 * still piped into it afterwards is dropped (the writer finds out when its own source closes).
 */
function endStream(res: ServerResponse): void {
  const end = res.end.bind(res);
  res.write = (() => true) as ServerResponse["write"];
  res.end = (() => res) as ServerResponse["end"];
  end();
}
