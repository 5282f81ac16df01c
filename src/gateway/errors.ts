/**
 * Error replies of the resource side. MCP clients speak JSON-RPC, so every refusal the gateway
 * itself produces (auth, routing, upstream failures) carries a JSON-RPC error object with
 * `id: null` (the gateway does not parse the request body, so it cannot echo the id).
 */
import type { FastifyReply } from "fastify";

/** JSON-RPC "server error" range; -32000 is the conventional generic code (also used by the MCP SDK). */
export const SERVER_ERROR = -32000;
/** JSON-RPC internal error. */
export const INTERNAL_ERROR = -32603;

export interface JsonRpcErrorBody {
  jsonrpc: "2.0";
  error: { code: number; message: string };
  id: null;
}

/** The body of a JSON-RPC error response. */
export function jsonRpcError(message: string, code: number = SERVER_ERROR): JsonRpcErrorBody {
  return { jsonrpc: "2.0", error: { code, message }, id: null };
}

/** Sends a JSON-RPC error with an HTTP status (and optional extra headers). */
export function sendJsonRpcError(
  reply: FastifyReply,
  status: number,
  message: string,
  headers: Record<string, string> = {},
  code: number = SERVER_ERROR,
): FastifyReply {
  return reply
    .code(status)
    .headers(headers)
    .header("content-type", "application/json; charset=utf-8")
    .header("cache-control", "no-store")
    .send(jsonRpcError(message, code));
}

/** A JSON-RPC id as a request carries it. */
export type JsonRpcId = string | number | null;

/**
 * Sends a JSON-RPC error answering the request `id` (the gateway read the body, so it can
 * echo it), with optional `data`.
 */
export function sendJsonRpcErrorFor(
  reply: FastifyReply,
  status: number,
  id: JsonRpcId,
  error: { code: number; message: string; data?: unknown },
  headers: Record<string, string> = {},
): FastifyReply {
  return reply
    .code(status)
    .headers(headers)
    .header("content-type", "application/json; charset=utf-8")
    .header("cache-control", "no-store")
    .send({ jsonrpc: "2.0", error, id });
}
