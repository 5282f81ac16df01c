/**
 * W3C Trace Context from the HTTP request into the MCP requests it carries (SEP-414: `traceparent`
 * and `tracestate` in `params._meta`), so a stdio server that traces joins the trace of the
 * request that reached it. Behind the gateway the header names the gateway's span when tracing
 * is on, and is the client's own otherwise. The nearer hop wins over a `_meta` value the client
 * wrote itself.
 */
import type { IncomingHttpHeaders } from "node:http";
import { isRequest, type JsonRpcMessage } from "./jsonrpc.js";

/** version-traceid-parentid-flags, lower-case hex (W3C Trace Context §3.2). */
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** Writes the request's trace context into each request message, in place. */
export function carryTraceContext(messages: JsonRpcMessage[], headers: IncomingHttpHeaders): void {
  const traceparent = headers.traceparent;
  if (typeof traceparent !== "string" || !TRACEPARENT.test(traceparent)) return;
  const tracestate = typeof headers.tracestate === "string" ? headers.tracestate : undefined;
  for (const message of messages) {
    if (!isRequest(message)) continue;
    const request = message as { params?: unknown };
    if (request.params === undefined) request.params = {};
    const params = request.params;
    if (typeof params !== "object" || params === null || Array.isArray(params)) continue;
    const holder = params as { _meta?: unknown };
    if (typeof holder._meta !== "object" || holder._meta === null || Array.isArray(holder._meta))
      holder._meta = {};
    const meta = holder._meta as Record<string, unknown>;
    meta.traceparent = traceparent;
    if (tracestate) meta.tracestate = tracestate;
    else delete meta.tracestate;
  }
}
