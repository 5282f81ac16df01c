/**
 * What the span of an MCP request says (tracing on only; src/ops/tracing.ts): the route and
 * service, the MCP method and tool (from the small JSON body the proxy reads anyway), the
 * authorization decision and its reason, a hash of the user id (never the id itself), and the
 * status. Attribute names follow the OpenTelemetry HTTP and MCP conventions where they have one.
 */
import { createHash } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { RequestSpan, Tracing } from "../ops/tracing.js";
import type { AccessOutcome } from "./access.js";
import type { ServiceRoute } from "./routing.js";

/** Starts the request's span; it ends when the response does, however it ends. */
export function traceRequest(
  tracing: Tracing,
  req: FastifyRequest,
  reply: FastifyReply,
  route: ServiceRoute | undefined,
): RequestSpan {
  const httpRoute = req.routeOptions.url ?? "/mcp";
  const header = req.headers["mcp-method"];
  const span = tracing.start(`${req.method} ${httpRoute}`, req.headers, {
    "http.request.method": req.method,
    "http.route": httpRoute,
    "gateway.service": route?.name,
    // The 2026-07-28 header, until the body (when read) says for certain.
    "mcp.method.name": typeof header === "string" ? header : undefined,
  });
  const res = reply.raw;
  res.once("close", () => span.end(res.statusCode));
  return span;
}

/** The decision for this request, and why. */
export function traceDecision(span: RequestSpan, outcome: AccessOutcome): void {
  const claims = outcome.claims;
  span.set({
    "gateway.authz.decision": outcome.ok ? "allow" : "deny",
    "gateway.authz.reason": outcome.ok ? "token accepted" : outcome.message,
    "gateway.client_id": claims?.client_id,
    "user.hash": claims?.sub ? userHash(claims.sub) : undefined,
  });
}

/** A stable, one-way label for a user id: the same user is one value, and no id is exported. */
export function userHash(sub: string): string {
  return createHash("sha256").update(`mcp-gateway user\0${sub}`).digest("hex").slice(0, 32);
}

/** The MCP method, tool and request id of a (bounded) JSON-RPC body; a batch names only its size. */
export function traceMessage(span: RequestSpan, body: Buffer): void {
  let message: unknown;
  try {
    message = JSON.parse(body.toString("utf8"));
  } catch {
    return;
  }
  if (Array.isArray(message)) {
    span.set({ "gateway.batch_size": message.length });
    return;
  }
  if (typeof message !== "object" || message === null) return;
  const { method, id, params } = message as { method?: unknown; id?: unknown; params?: { name?: unknown } };
  if (typeof method !== "string") return;
  const tool = method === "tools/call" && typeof params?.name === "string" ? params.name : undefined;
  span.set({
    "mcp.method.name": method,
    "gen_ai.tool.name": tool,
    "jsonrpc.request.id": typeof id === "string" || typeof id === "number" ? String(id) : undefined,
  });
  span.rename(tool ? `${method} ${tool}` : method);
}
