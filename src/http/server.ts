/**
 * The node:http server fastify runs on, with a first look at each request for shortcuts:
 * handlers that can answer a request in full without fastify's routing, hooks and reply
 * objects. Today that is /verify and the MCP proxy for a token whose verdict is already cached:
 * the request a reverse proxy makes before every request of every client, and every call of a
 * client in a session, where fastify's own cost was a fifth of the throughput (bench/RESULTS.md).
 *
 * A shortcut answers and returns true, or touches nothing and returns false; fastify then
 * handles the request as if no shortcut existed, so fastify's routes stay the authority for
 * everything a shortcut declines (refusals, first sight of a token, odd requests).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { FastifyServerFactory } from "fastify";

export type Shortcut = (req: IncomingMessage, res: ServerResponse) => boolean;

/** What the server does with every request as it arrives, before any shortcut or fastify. */
export interface ArrivalHook {
  arrived(req: IncomingMessage): void;
}

/** One shortcut and how many requests it answered (read by /metrics: ops/shortcut-metrics.ts). */
export interface ShortcutLane {
  /** What it answers, as the metric's label: `verify`, `mcp`. */
  readonly name: string;
  readonly shortcut: Shortcut;
  taken: number;
}

export class Shortcuts {
  private readonly list: ShortcutLane[] = [];

  constructor(private readonly arrival?: ArrivalHook) {}
  /** Where a shortcut's own failure is reported; the request then goes to fastify. */
  onError: (err: unknown) => void = () => {};

  /** `name` labels its count on /metrics. */
  add(name: string, shortcut: Shortcut): void {
    this.list.push({ name, shortcut, taken: 0 });
  }

  /** Each shortcut with its count, in the order they are offered requests. */
  get lanes(): readonly ShortcutLane[] {
    return this.list;
  }

  /**
   * Requests a shortcut answered (started answering), since start: the one place that says which
   * lane took a request, since both lanes answer and log alike (tests and /metrics read it).
   */
  get taken(): number {
    let sum = 0;
    for (const lane of this.list) sum += lane.taken;
    return sum;
  }

  /** Offers the request to each shortcut in turn; true when one answered it. */
  take(req: IncomingMessage, res: ServerResponse): boolean {
    for (const lane of this.list) {
      try {
        if (lane.shortcut(req, res)) {
          lane.taken++;
          return true;
        }
      } catch (err) {
        this.onError(err);
        // A full answer stands; half of one cannot be finished by fastify: end the connection.
        if (res.writableEnded) return true;
        if (res.headersSent) {
          res.destroy();
          return true;
        }
      }
    }
    return false;
  }

  /**
   * fastify's `serverFactory`: the HTTP/1 server fastify itself would create, with the same
   * timeouts from fastify's resolved options, taking shortcuts before fastify's handler.
   */
  readonly serverFactory: FastifyServerFactory<Server> = (handler, options) => {
    const server = createServer((options.http ?? {}) as object, (req, res) => {
      this.arrival?.arrived(req);
      if (!this.take(req, res)) handler(req, res);
    });
    server.keepAliveTimeout = options.keepAliveTimeout as number;
    server.requestTimeout = options.requestTimeout as number;
    server.setTimeout(options.connectionTimeout as number);
    const perSocket = options.maxRequestsPerSocket as number | null | undefined;
    if (perSocket && perSocket > 0) server.maxRequestsPerSocket = perSocket;
    return server;
  };
}
