/**
 * The protected MCP endpoint, as a short list of steps: route, Origin, preflight, method,
 * token, inspection (only where headers or a per-tool policy need the body), proxy. Authentication comes from the Bearer token on every request, never from an
 * `Mcp-Session-Id`.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { ClientAddresses } from "../http/client-address.js";
import type { Tracing } from "../ops/tracing.js";
import type { Admission } from "./admission.js";
import type { EndpointPages } from "./browser-page.js";
import { sendJsonRpcError } from "./errors.js";
import { type IdentityHeaderNames, identityHeaders } from "./headers.js";
import type { McpInspector } from "./mcp-inspection.js";
import type { OriginPolicy } from "./origin.js";
import { fastifyExchange, type UpstreamProxy } from "./proxy.js";
import { traceDecision, traceRequest } from "./request-trace.js";
import type { ServiceRoute } from "./routing.js";

/** Methods of the Streamable HTTP transport; all of them pass through. */
export const MCP_METHODS = ["GET", "POST", "DELETE"] as const;
/** Methods routed to the endpoint: the MCP ones, the preflight, and a few to refuse clearly. */
export const ROUTED_METHODS = [...MCP_METHODS, "OPTIONS", "HEAD", "PUT", "PATCH"];

export interface McpEndpointDeps {
  /** Origin and token, the steps every lane shares (admission.ts). */
  admission: Admission;
  /** CORS and preflight headers for allowed browser origins. */
  origins: OriginPolicy;
  proxy: UpstreamProxy;
  inspector: McpInspector;
  clients: ClientAddresses;
  identityNames: IdentityHeaderNames;
  /** One span per request when tracing is on; undefined (no work at all) when off. */
  tracing?: Tracing;
  /** The page a browser gets with a 401 instead of the JSON-RPC error. */
  pages: EndpointPages;
}

/** Returns the handler; the caller resolves the route (by path or by host) first. */
export function mcpEndpoint(deps: McpEndpointDeps) {
  const { admission, origins, proxy, inspector, clients, identityNames, tracing, pages } = deps;
  return async (req: FastifyRequest, reply: FastifyReply, route: ServiceRoute | undefined) => {
    const span = tracing && traceRequest(tracing, req, reply, route);
    if (!route) return sendJsonRpcError(reply, 404, "No such service");

    const origin = req.headers.origin;
    if (!admission.originAllowed(req.raw, route)) return sendJsonRpcError(reply, 403, "Origin not allowed");
    const cors = origins.corsHeaders(origin);

    if (req.method === "OPTIONS") {
      const preflight = origin !== undefined && req.headers["access-control-request-method"] !== undefined;
      const headers = preflight
        ? origins.preflightHeaders(origin, req.headers["access-control-request-headers"])
        : { allow: "GET, POST, DELETE, OPTIONS" };
      return reply.code(204).headers(headers).send();
    }
    if (!(MCP_METHODS as readonly string[]).includes(req.method)) {
      return sendJsonRpcError(reply, 405, `Method ${req.method} not allowed`, {
        ...cors,
        allow: "GET, POST, DELETE",
      });
    }

    // A cached verdict is decided at once: no await (and no microtask) for it.
    const decided = admission.token(req.raw, route);
    const outcome = decided instanceof Promise ? await decided : decided;
    if (span) traceDecision(span, outcome);
    if (!outcome.ok) {
      const headers = { ...cors, "www-authenticate": outcome.challenge };
      if (pages.wanted(req, outcome.status)) {
        const sent = pages.send(reply, route, headers);
        if (sent) return sent;
      }
      return sendJsonRpcError(reply, outcome.status, outcome.message, headers);
    }
    if (!proxy.has(route.name))
      return sendJsonRpcError(reply, 502, `The service ${route.name} has no upstream`, cors);
    reply.headers(cors);
    const identity = identityHeaders(outcome.claims, identityNames);
    const client = clients.of(req.raw);
    if (!inspector.wants(req.raw, route)) {
      await proxy.forward(fastifyExchange(req, reply), route.name, identity, client, undefined, span);
      return reply;
    }
    const plan = await inspector.inspect(req, reply, route, { claims: outcome.claims, ip: client.ip });
    if (plan) await proxy.forward(fastifyExchange(req, reply), route.name, identity, client, plan, span);
    return reply;
  };
}
