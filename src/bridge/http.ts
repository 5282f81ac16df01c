/**
 * The Streamable HTTP endpoint of the bridge, both eras on one path. 2025-03-26 to 2025-11-25:
 * POST carries client messages, GET opens the server's stream, DELETE ends a session. 2026-07-28:
 * a POST whose message claims the revision in its `_meta` envelope is one stateless request
 * (see stateless.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { secretMatches } from "../crypto/secrets.js";
import { bearerToken } from "../tokens/bearer.js";
import { claimedVersion, MODERN_VERSIONS } from "./envelope.js";
import { Exchange } from "./exchange.js";
import {
  ErrorCode,
  isMessage,
  isNotification,
  isRequest,
  isResponse,
  type JsonRpcMessage,
} from "./jsonrpc.js";
import type { SessionPlacement } from "./placement.js";
import type { BridgeLogger, SessionRegistry } from "./registry.js";
import { sendJsonRpcError } from "./sse.js";
import type { StatelessEndpoint } from "./stateless.js";
import { carryTraceContext } from "./trace-meta.js";

/** The request headers that name the caller; the gateway sets them from the verified token. */
export interface OwnerHeaders {
  userId: string;
  clientId: string;
}

export interface EndpointOptions {
  path: string;
  maxBodyBytes: number;
  maxSessions: number;
  /** Host header names accepted (DNS-rebinding guard); undefined accepts any. Lowercase, no port. */
  allowedHosts?: Set<string>;
  /** hashSecret() of the bearer every request must present; undefined requires none. */
  authTokenHash?: string;
  /** Whose session it is: the user and client these headers name (trusted: see authTokenHash). */
  identityHeaders: OwnerHeaders;
  /** Serves the 2026-07-28 requests. */
  stateless: StatelessEndpoint;
  /** Several gateway instances: where sessions this bridge does not hold are (none: 404). */
  placement?: SessionPlacement;
  logger?: BridgeLogger;
}

/** The host name of a Host header, without the port ("[::1]" keeps its brackets). */
function hostName(header: string | undefined): string {
  const host = (header ?? "").toLowerCase();
  return host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : (host.split(":")[0] ?? "");
}

interface Accepts {
  json: boolean;
  sse: boolean;
}

function parseAccept(header: string | undefined): Accepts {
  if (!header) return { json: true, sse: true };
  const h = header.toLowerCase();
  const any = h.includes("*/*");
  return {
    json: any || h.includes("application/json") || h.includes("application/*"),
    sse: any || h.includes("text/event-stream") || h.includes("text/*"),
  };
}

export class BodyTooLarge extends Error {}

/** A request's whole body, refusing (BodyTooLarge) past `limit` bytes. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) throw new BodyTooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new BodyTooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Whether the request carries the bridge's bearer secret (compared in constant time). */
function authorized(req: IncomingMessage, expectedHash: string | undefined): boolean {
  if (expectedHash === undefined) return true;
  const token = bearerToken(req.headers.authorization);
  return typeof token === "string" && secretMatches(token, expectedHash);
}

/** The request handler for a bridge: one endpoint path, everything else 404. */
export function createEndpoint(registry: SessionRegistry, opts: EndpointOptions) {
  const userHeader = opts.identityHeaders.userId.toLowerCase();
  const clientHeader = opts.identityHeaders.clientId.toLowerCase();
  /** Who is asking: user and client from the identity headers ("" for each one absent). */
  const ownerOf = (req: IncomingMessage): string => {
    const user = req.headers[userHeader];
    const client = req.headers[clientHeader];
    // A newline cannot occur in a header value, so the pair is unambiguous.
    return `${typeof user === "string" ? user : ""}\n${typeof client === "string" ? client : ""}`;
  };

  /**
   * The live session a request names, if it is the caller's; otherwise the 400 or 404 is already
   * sent. Someone else's session is "not found", as an unknown one is (MCP: 404), and untouched.
   */
  const sessionOf = async (req: IncomingMessage, res: ServerResponse, relayed: boolean, body?: Buffer) => {
    const sid = req.headers["mcp-session-id"];
    if (typeof sid !== "string" || !sid) {
      sendJsonRpcError(res, 400, ErrorCode.ServerError, "Bad Request: Mcp-Session-Id header is required");
      return undefined;
    }
    const entry = registry.get(sid, ownerOf(req));
    if (entry) return { sid, ...entry };
    // Not held here: another instance may hold it (never asked again for a relayed request).
    if (!relayed && opts.placement && !registry.has(sid)) {
      if (await opts.placement.relay(sid, req, res, body)) return undefined;
    }
    sendJsonRpcError(res, 404, ErrorCode.SessionNotFound, "Session not found");
    return undefined;
  };

  async function post(
    req: IncomingMessage,
    res: ServerResponse,
    relayed: boolean,
    preread?: Buffer,
  ): Promise<void> {
    const accepts = parseAccept(req.headers.accept);
    if (!accepts.json && !accepts.sse) {
      sendJsonRpcError(
        res,
        406,
        ErrorCode.ServerError,
        "Not Acceptable: accept application/json or text/event-stream",
      );
      return;
    }
    const type = (req.headers["content-type"] ?? "").toLowerCase();
    if (!type.includes("application/json")) {
      sendJsonRpcError(res, 415, ErrorCode.ServerError, "Unsupported Media Type: send application/json");
      return;
    }
    let parsed: unknown;
    let body: Buffer;
    try {
      // A relayed request's body was read (and its signature checked) by the internal channel.
      body = preread ?? (await readBody(req, opts.maxBodyBytes));
      if (body.length > opts.maxBodyBytes) throw new BodyTooLarge();
      parsed = JSON.parse(body.toString("utf8"));
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        sendJsonRpcError(
          res,
          413,
          ErrorCode.InvalidRequest,
          `Request body over ${opts.maxBodyBytes} bytes`,
          null,
          {
            connection: "close",
          },
        );
      } else {
        sendJsonRpcError(res, 400, ErrorCode.ParseError, "Parse error: the body is not JSON");
      }
      return;
    }
    const batch = Array.isArray(parsed);
    const messages: unknown[] = Array.isArray(parsed) ? parsed : [parsed];
    if (messages.length === 0 || !messages.every(isMessage)) {
      sendJsonRpcError(res, 400, ErrorCode.InvalidRequest, "Invalid Request: not a JSON-RPC 2.0 message");
      return;
    }
    const valid = messages as JsonRpcMessage[];
    carryTraceContext(valid, req.headers);
    if (req.headers["mcp-session-id"] === undefined && !batch) {
      const first = valid[0] as JsonRpcMessage;
      if (claimedVersion(first) !== undefined) {
        await opts.stateless.handle(first, ownerOf(req), accepts, res);
        return;
      }
      const header = req.headers["mcp-protocol-version"];
      if (typeof header === "string" && MODERN_VERSIONS.includes(header)) {
        sendJsonRpcError(
          res,
          400,
          ErrorCode.InvalidParams,
          `Invalid Request: protocol ${header} needs the _meta envelope`,
          isRequest(first) ? (first.id as string | number) : null,
        );
        return;
      }
    }
    const init = valid.find((m) => isRequest(m) && m.method === "initialize");
    if (init) {
      if (valid.length > 1) {
        sendJsonRpcError(
          res,
          400,
          ErrorCode.InvalidRequest,
          "Invalid Request: initialize must be sent alone",
        );
        return;
      }
      await initialize(init, accepts, ownerOf(req), res);
      return;
    }
    const entry = await sessionOf(req, res, relayed, body);
    if (!entry) return;
    const { sid, session, upstream } = entry;
    const requests = valid.filter(isRequest);
    const exchange =
      requests.length > 0
        ? new Exchange(res, requests.length, batch, accepts, { "mcp-session-id": sid })
        : null;
    if (exchange) {
      session.exchanges.add(exchange);
      res.on("close", () => session.exchanges.delete(exchange));
    }
    for (const msg of valid) {
      if (exchange && isRequest(msg)) upstream.request(session, msg, exchange);
      else if (isNotification(msg)) upstream.notify(session, msg);
      else if (isResponse(msg)) upstream.reply(msg);
    }
    if (!exchange) res.writeHead(202, { "mcp-session-id": sid }).end();
  }

  async function initialize(
    msg: JsonRpcMessage,
    accepts: Accepts,
    owner: string,
    res: ServerResponse,
  ): Promise<void> {
    const entry = registry.open(owner);
    if (!entry) {
      sendJsonRpcError(
        res,
        503,
        ErrorCode.ServerError,
        `Too many sessions (limit ${opts.maxSessions}); try later`,
        null,
        {
          "retry-after": "5",
        },
      );
      return;
    }
    const { session, upstream } = entry;
    if (opts.placement) {
      try {
        await opts.placement.opened(session.id);
      } catch (err) {
        // A session the other instances could not find would break on its next request.
        registry.end(session.id, "its placement could not be recorded");
        opts.logger?.warn({ err: (err as Error).message }, "bridge session placement not recorded");
        sendJsonRpcError(
          res,
          503,
          ErrorCode.ServerError,
          "Sessions are unavailable; try again shortly",
          null,
          {
            "retry-after": "1",
          },
        );
        return;
      }
    }
    const exchange = new Exchange(res, 1, false, accepts, { "mcp-session-id": session.id });
    upstream.request(session, msg, exchange, (reply) => {
      // A session whose initialize failed is of no use: end it (and its child).
      if (!("result" in reply)) registry.end(session.id, "initialize failed");
    });
  }

  async function get(req: IncomingMessage, res: ServerResponse, relayed: boolean): Promise<void> {
    if (!parseAccept(req.headers.accept).sse) {
      sendJsonRpcError(
        res,
        406,
        ErrorCode.ServerError,
        "Not Acceptable: the GET stream needs text/event-stream",
      );
      return;
    }
    const entry = await sessionOf(req, res, relayed);
    if (!entry) return;
    if (!entry.session.attachStream(res)) {
      sendJsonRpcError(res, 409, ErrorCode.ServerError, "Conflict: this session already has a GET stream");
    }
  }

  async function remove(req: IncomingMessage, res: ServerResponse, relayed: boolean): Promise<void> {
    const entry = await sessionOf(req, res, relayed);
    if (!entry) return;
    registry.end(entry.sid, "session deleted by the client");
    res.writeHead(200).end();
  }

  /** @param relayed the request comes from the instance it was sent to, for a session held here */
  return async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    relayed = false,
    body?: Buffer,
  ): Promise<void> {
    try {
      if (!authorized(req, opts.authTokenHash)) {
        sendJsonRpcError(
          res,
          401,
          ErrorCode.ServerError,
          "Unauthorized: this bridge requires its bearer token",
          null,
          {
            "www-authenticate": 'Bearer realm="mcp-gateway bridge"',
          },
        );
        return;
      }
      const path = (req.url ?? "/").split("?")[0];
      if (path !== opts.path) {
        sendJsonRpcError(res, 404, ErrorCode.InvalidRequest, `Not found: the MCP endpoint is ${opts.path}`);
        return;
      }
      if (opts.allowedHosts && !opts.allowedHosts.has(hostName(req.headers.host))) {
        // A page that rebinds its own name to 127.0.0.1 still sends its own Host: refuse it.
        sendJsonRpcError(res, 403, ErrorCode.ServerError, "Forbidden: unexpected Host header");
        return;
      }
      if (req.method === "POST") await post(req, res, relayed, body);
      else if (req.method === "GET") await get(req, res, relayed);
      else if (req.method === "DELETE") await remove(req, res, relayed);
      else {
        sendJsonRpcError(res, 405, ErrorCode.ServerError, "Method Not Allowed", null, {
          allow: "GET, POST, DELETE",
        });
      }
    } catch (err) {
      opts.logger?.error({ err: (err as Error).message }, "bridge request failed");
      sendJsonRpcError(res, 500, ErrorCode.InternalError, "Internal error");
    }
  };
}
