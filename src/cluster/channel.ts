/**
 * The receiving half of the internal channel: a listener only the other instances talk to.
 * A request that does not carry the cluster secret is refused (401) before anything else is
 * read; one that does is served by the named service's bridge as a relayed request, with the
 * identity headers the sending instance set (they are its decision: nothing is checked again
 * here, the session's own owner check still applies), and never relayed further.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { RunningBridge } from "../bridge/index.js";
import { sendJsonRpcError } from "../bridge/sse.js";
import { constantTimeEqual } from "../crypto/secrets.js";
import { bearerToken } from "../tokens/bearer.js";
import { CLUSTER_HEADER_PREFIX } from "./protocol.js";

export interface ChannelOptions {
  host: string;
  port: number;
  secret: string;
  /** Path prefix of advertise_url ("" for none). */
  basePath: string;
  log?: { warn(obj: object, msg?: string): void };
}

export class ClusterChannel {
  private readonly secret: Buffer;
  private readonly server: Server;
  /** service name -> its bridge, once the bridges run. */
  private bridges = new Map<string, RunningBridge>();

  constructor(private readonly opts: ChannelOptions) {
    this.secret = Buffer.from(opts.secret);
    this.server = createServer((req, res) => void this.handle(req, res));
    // Relayed GET streams and slow tool calls are long-lived.
    this.server.requestTimeout = 0;
  }

  get httpServer(): Server {
    return this.server;
  }

  /** The bridges whose sessions the channel serves. */
  serve(bridges: Map<string, RunningBridge>): void {
    this.bridges = bridges;
  }

  async listen(): Promise<string> {
    const server = this.server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const { address, port } = server.address() as AddressInfo;
    return `${address.includes(":") ? `[${address}]` : address}:${port}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const presented = bearerToken(req.headers.authorization);
    if (typeof presented !== "string" || !constantTimeEqual(presented, this.secret)) {
      this.opts.log?.warn(
        { ip: req.socket.remoteAddress },
        "internal channel: request without the cluster secret",
      );
      sendJsonRpcError(res, 401, -32000, "Unauthorized: this listener is for gateway instances only", null, {
        "www-authenticate": 'Bearer realm="mcp-gateway cluster"',
      });
      return;
    }
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const match = /^\/([a-z0-9][a-z0-9-]*)\/mcp$/.exec(path.slice(this.opts.basePath.length));
    const bridge =
      path.startsWith(this.opts.basePath) && match ? this.bridges.get(match[1] as string) : undefined;
    if (!bridge) {
      sendJsonRpcError(res, 404, -32000, "No such bridged service on this instance");
      return;
    }
    // Only requests for a session already held here travel this channel; opening one is done
    // by whichever instance the client reached, through its own token check.
    if (typeof req.headers["mcp-session-id"] !== "string") {
      sendJsonRpcError(res, 400, -32000, "Bad Request: the internal channel carries session requests only");
      return;
    }
    delete req.headers.authorization;
    for (const name of Object.keys(req.headers))
      if (name.startsWith(CLUSTER_HEADER_PREFIX)) delete req.headers[name];
    req.url = new URL(bridge.url).pathname;
    await bridge.serveRelayed(req, res);
  }

  async close(): Promise<void> {
    const server = this.server;
    // A drain may have closed the listener already; what is still connected goes now.
    const closed = server.listening
      ? new Promise<void>((resolve) => server.close(() => resolve()))
      : undefined;
    server.closeAllConnections();
    await closed;
  }
}
