/**
 * RFC 9728 protected resource metadata, one document per service. Path routing:
 * `/.well-known/oauth-protected-resource/{name}/mcp` (the path-inserted form for the resource
 * `{public_url}/{name}/mcp`). With a path in public_url (`https://host/gw`, prefix stripped by
 * the proxy), the challenges name `{public_url}/.well-known/oauth-protected-resource/{name}/mcp`,
 * which reaches that same route through the proxy's `/gw/`; RFC 9728 §3.1's own form,
 * `https://host/.well-known/oauth-protected-resource/gw/{name}/mcp`, which clients probe when
 * they have no challenge at hand, is served too, for a proxy that passes it on. Host routing: `/.well-known/oauth-protected-resource/mcp` and
 * `/.well-known/oauth-protected-resource` on the service's own host.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { publicPath } from "../config/public-path.js";
import type { GatewayConfig } from "../config/schema.js";
import { serviceScopesSupported } from "../config/scopes.js";
import { sendJsonRpcError } from "./errors.js";
import { PRM_PREFIX, type ServiceRoute, type ServiceRouter } from "./routing.js";

/** Public metadata: any origin may read it, and browsers send MCP-Protocol-Version with it. */
const PUBLIC_CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, OPTIONS",
  "access-control-allow-headers": "MCP-Protocol-Version, Content-Type, Authorization",
  "access-control-max-age": "600",
};
/** Metadata changes only with the config; let clients cache it briefly. */
const CACHE_CONTROL = "public, max-age=300";

/** The metadata document for a service as reached by `route`. */
export function protectedResourceMetadata(config: GatewayConfig, router: ServiceRouter, route: ServiceRoute) {
  const service = route.service;
  const supported = serviceScopesSupported(service);
  return {
    resource: router.resourceUrl(route),
    authorization_servers: [config.public_url],
    ...(supported.length > 0 ? { scopes_supported: supported } : {}),
    bearer_methods_supported: ["header"],
    resource_name: service.title ?? route.name,
  };
}

/** Registers the metadata routes on the gateway's encapsulated instance. */
export function registerMetadataRoutes(
  app: FastifyInstance,
  config: GatewayConfig,
  router: ServiceRouter,
): void {
  const send = (reply: FastifyReply, route: ServiceRoute | undefined) => {
    if (!route) return sendJsonRpcError(reply, 404, "No protected resource here", PUBLIC_CORS);
    return reply
      .headers(PUBLIC_CORS)
      .header("cache-control", CACHE_CONTROL)
      .send(protectedResourceMetadata(config, router, route));
  };
  const preflight = (_req: FastifyRequest, reply: FastifyReply) =>
    reply.code(204).headers(PUBLIC_CORS).send();

  const prefix = publicPath(config.public_url);
  for (const path of new Set([`${PRM_PREFIX}/:service/mcp`, `${PRM_PREFIX}${prefix}/:service/mcp`])) {
    app.get<{ Params: { service: string } }>(path, (req, reply) =>
      send(reply, router.byName(req.params.service)),
    );
    app.options(path, preflight);
  }
  if (!router.hostRouting) return;
  // On a service's own host, the resource is `{scheme}://{name}.{base_domain}/mcp`; clients of
  // older spec revisions look at the root document, newer ones at the path-inserted one.
  for (const path of [PRM_PREFIX, `${PRM_PREFIX}/mcp`]) {
    app.get(path, (req, reply) => send(reply, router.byHost(req.host)));
    app.options(path, preflight);
  }
}
