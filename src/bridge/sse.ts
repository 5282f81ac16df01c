/** Server-sent events framing for Streamable HTTP, and the plain JSON error replies. */
import type { ServerResponse } from "node:http";
import type { JsonRpcId, JsonRpcMessage } from "./jsonrpc.js";
import { errorResponse } from "./jsonrpc.js";

/** Start an SSE answer. */
export function writeSseHead(res: ServerResponse, headers: Record<string, string>): void {
  res.writeHead(200, {
    ...headers,
    "content-type": "text/event-stream",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    // Tell nginx-like proxies not to buffer the stream.
    "x-accel-buffering": "no",
  });
  res.flushHeaders();
}

/** One JSON-RPC message as one `message` event. JSON.stringify never emits raw newlines. */
export function writeSseEvent(res: ServerResponse, msg: JsonRpcMessage): void {
  if (res.destroyed || res.writableEnded) return;
  res.write(`event: message\ndata: ${JSON.stringify(msg)}\n\n`);
}

/** A comment line keeps idle streams open through proxies and detects dead clients. */
export function writeSsePing(res: ServerResponse): void {
  if (res.destroyed || res.writableEnded) return;
  res.write(": ping\n\n");
}

/** An HTTP error whose body is a JSON-RPC error, as MCP clients expect from the endpoint. */
export function sendJsonRpcError(
  res: ServerResponse,
  status: number,
  code: number,
  message: string,
  id: JsonRpcId | null = null,
  headers: Record<string, string> = {},
  data?: unknown,
): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.end();
    return;
  }
  const body = JSON.stringify(errorResponse(id, code, message, data));
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}
