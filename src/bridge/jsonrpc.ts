/**
 * The little JSON-RPC 2.0 the bridge needs: classify a message and build error replies.
 * Messages are otherwise forwarded as they are; nothing here validates their params.
 */
import type { JsonRpcMessage } from "./child.js";

export type { JsonRpcMessage };
export type JsonRpcId = string | number;

/** Error codes used by the bridge (JSON-RPC reserved range and the SDK's conventions). */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** 2026-07-28: the Mcp-Method / Mcp-Name headers disagree with the body. */
  HeaderMismatch: -32020,
  /** 2026-07-28: serving the request needs a capability the client did not declare. */
  MissingRequiredClientCapability: -32021,
  /** 2026-07-28: the request names a revision the server does not serve. */
  UnsupportedProtocolVersion: -32022,
  /** Generic server-side failure (bad session header, capacity, child gone). */
  ServerError: -32000,
  /** The SDK's code for "session not found" and for timeouts. */
  SessionNotFound: -32001,
  RequestTimeout: -32001,
} as const;

function isId(value: unknown): value is JsonRpcId {
  return typeof value === "string" || typeof value === "number";
}

/** A request carries a method and an id. */
export function isRequest(msg: JsonRpcMessage): boolean {
  return typeof msg.method === "string" && isId(msg.id);
}

/** A notification carries a method and no id. */
export function isNotification(msg: JsonRpcMessage): boolean {
  return typeof msg.method === "string" && msg.id === undefined;
}

/** A response carries an id and a result or an error, and no method. */
export function isResponse(msg: JsonRpcMessage): boolean {
  return msg.method === undefined && (isId(msg.id) || msg.id === null) && ("result" in msg || "error" in msg);
}

/** Whether a parsed body element looks like any JSON-RPC message at all. */
export function isMessage(value: unknown): value is JsonRpcMessage {
  if (!value || typeof value !== "object" || Array.isArray(value)) return false;
  const msg = value as JsonRpcMessage;
  return msg.jsonrpc === "2.0" && (isRequest(msg) || isNotification(msg) || isResponse(msg));
}

/** A JSON-RPC error response. `id` is null when the request's id is unknown. */
export function errorResponse(
  id: JsonRpcId | null,
  code: number,
  message: string,
  data?: unknown,
): JsonRpcMessage {
  return { jsonrpc: "2.0", id, error: data === undefined ? { code, message } : { code, message, data } };
}

/** A stable map key for an id: the string "1" and the number 1 are different ids. */
export function idKey(id: unknown): string {
  return typeof id === "number" ? `n:${id}` : `s:${String(id)}`;
}

/** The `_meta.progressToken` of a request, if any. */
export function progressTokenOf(msg: JsonRpcMessage): JsonRpcId | undefined {
  const params = msg.params as { _meta?: { progressToken?: unknown } } | undefined;
  const token = params?._meta?.progressToken;
  return isId(token) ? token : undefined;
}

/** A copy of a request whose `_meta.progressToken` is replaced. */
export function withProgressToken(msg: JsonRpcMessage, token: JsonRpcId): JsonRpcMessage {
  const params = (msg.params ?? {}) as Record<string, unknown>;
  const meta = (params._meta ?? {}) as Record<string, unknown>;
  return { ...msg, params: { ...params, _meta: { ...meta, progressToken: token } } };
}
