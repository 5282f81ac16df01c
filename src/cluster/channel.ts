/**
 * The receiving half of the internal channel: a listener only the other instances talk to.
 * A request whose signature (signature.ts) does not check out — unsigned, altered, stale,
 * replayed, meant for another instance — is refused (401) before it reaches a bridge; one that
 * does is served by the named service's bridge as a relayed request, with the identity headers
 * the sending instance set and signed (they are its decision: nothing is checked again here, the
 * session's own owner check still applies) and no header it did not sign, and never relayed
 * further.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { readBody } from "../bridge/http.js";
import type { RunningBridge } from "../bridge/index.js";
import { sendJsonRpcError } from "../bridge/sse.js";
import { signAnswers } from "./answer-signature.js";
import { CLUSTER_FROM_HEADER, CLUSTER_HEADER_PREFIX } from "./protocol.js";
import { NONCE_HEADER, RelayVerifier, relayKey } from "./signature.js";

/** What the connection itself carries: not the sender's to sign. */
const CONNECTION_HEADERS = new Set([
  "host",
  "content-length",
  "connection",
  "keep-alive",
  "transfer-encoding",
]);

export interface ChannelOptions {
  host: string;
  port: number;
  secret: string;
  /** This instance's advertise_url (no trailing slash): what a request for it is signed for. */
  advertiseUrl: string;
  /** Path prefix of advertise_url ("" for none). */
  basePath: string;
  /** Largest relayed body (`gateway.max_body`: the relaying instance read it under that limit). */
  maxBodyBytes: number;
  log?: { warn(obj: object, msg?: string): void };
  /** Where a served relayed request's access line goes (the app's RequestLog, src/ops/request-log.ts). */
  requests?: RelayedAccessLog;
}

/** The part of the app's request log the channel writes to (declared here: cluster needs no ops). */
export interface RelayedAccessLog {
  relayedAnswered(
    method: string,
    url: string,
    ip: string,
    relayedFrom: string,
    status: number,
    startedAt: number,
  ): void;
}

export class ClusterChannel {
  private readonly verifier: RelayVerifier;
  private readonly key: Buffer;
  private readonly server: Server;
  /** service name -> its bridge, once the bridges run. */
  private bridges = new Map<string, RunningBridge>();

  constructor(private readonly opts: ChannelOptions) {
    this.key = relayKey(opts.secret);
    this.verifier = new RelayVerifier(this.key);
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
    // Unsigned or stale: refused before its body is read.
    const early = this.verifier.preflight(req.headers);
    if (early) return this.refuse(req, res, early.reason);
    let body: Buffer;
    try {
      body = await readBody(req, this.opts.maxBodyBytes);
    } catch {
      sendJsonRpcError(res, 413, -32000, "Request body too large", null, { connection: "close" });
      return;
    }
    const url = req.url ?? "/";
    const verdict = this.verifier.verify(
      {
        method: req.method ?? "GET",
        target: this.opts.advertiseUrl,
        path: url,
        body: body.length > 0 ? body : undefined,
      },
      req.headers,
    );
    if (!verdict.ok && verdict.reason === "busy") {
      sendJsonRpcError(res, 503, -32000, "Too many relayed requests at once; try again shortly", null, {
        "retry-after": "1",
      });
      return;
    }
    if (!verdict.ok) return this.refuse(req, res, verdict.reason);
    // Everything answered from here on is signed for this request (answer-signature.ts).
    signAnswers(res, this.key, req.headers[NONCE_HEADER] as string, req.method ?? "GET");
    const path = url.split("?")[0] ?? "/";
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
    this.logWhenDone(req, res);
    // The bridge sees what the sender signed and nothing else (no cluster header among it).
    for (const name of Object.keys(req.headers)) {
      if (name.startsWith(CLUSTER_HEADER_PREFIX)) delete req.headers[name];
      else if (!verdict.signedHeaders.has(name) && !CONNECTION_HEADERS.has(name)) delete req.headers[name];
    }
    delete req.headers.authorization;
    req.url = new URL(bridge.url).pathname;
    await bridge.serveRelayed(req, res, body);
  }

  /**
   * The owner's access line for a relayed request, through the app's request log (the normal
   * line, `log_requests` and all, plus `relayed_from`): the client as the relaying instance saw
   * it (its signed X-Forwarded-For, which it set from its own view of the client, never the
   * client's word), and which instance relayed it. Read before the headers are trimmed.
   */
  private logWhenDone(req: IncomingMessage, res: ServerResponse): void {
    const requests = this.opts.requests;
    if (!requests) return;
    const startedAt = performance.now();
    const from = req.headers[CLUSTER_FROM_HEADER];
    const forwardedFor = req.headers["x-forwarded-for"];
    const ip = (typeof forwardedFor === "string" ? forwardedFor.split(",")[0]?.trim() : undefined) ?? "";
    const relayedFrom = typeof from === "string" ? from : "";
    // The URL as it arrived (the bridge's own path is set on it before it is served).
    const { method = "", url = "" } = req;
    res.once("close", () =>
      requests.relayedAnswered(method, url, ip, relayedFrom, res.statusCode, startedAt),
    );
  }

  private refuse(req: IncomingMessage, res: ServerResponse, reason: string): void {
    this.opts.log?.warn(
      { ip: req.socket.remoteAddress, reason },
      "internal channel: request refused (no valid instance signature)",
    );
    sendJsonRpcError(res, 401, -32000, "Unauthorized: this listener is for gateway instances only", null, {
      "www-authenticate": 'MCP-Gateway-Cluster realm="mcp-gateway cluster"',
    });
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
