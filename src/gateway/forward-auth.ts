/**
 * `GET|POST|HEAD /verify`: the same decision as the built-in proxy, for a reverse proxy that
 * asks before it forwards (Traefik forwardAuth, Caddy forward_auth, nginx auth_request).
 *
 * The service is found, in this order, from `?service=` on the /verify URL (set in the proxy
 * config), `X-Forwarded-Host` (host routing, `{name}.{base_domain}`) and `X-Forwarded-Uri` or
 * `X-Original-URI` (path routing, `/{name}/…`). These headers are trusted here, and only here,
 * because the caller of /verify is the proxy itself, which sets them.
 *
 * Answers: 200 with the identity headers (all four, empty when the token has no value, so a
 * proxy that copies them always overwrites what the client sent); 401/403 with the same
 * WWW-Authenticate as the built-in proxy. A request for no known service gets 401 (not 404):
 * nginx's auth_request turns any status other than 2xx/401/403 into a 500, and failing
 * closed with a challenge is right for all three proxies. Preflights (`X-Forwarded-Method:
 * OPTIONS`) carry no token by design and are let through for the upstream to answer.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { GatewayConfig } from "../config/schema.js";
import type { AccessChecker } from "./access.js";
import { bearerChallenge } from "./challenge.js";
import { jsonRpcError } from "./errors.js";
import { identityHeaders } from "./headers.js";
import type { OriginPolicy } from "./origin.js";
import type { ServiceRoute, ServiceRouter } from "./routing.js";

function first(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  // X-Forwarded-Host may list a chain; the first entry is what the client asked for.
  const comma = v.indexOf(",");
  return (comma < 0 ? v : v.slice(0, comma)).trim() || undefined;
}

export interface ForwardAuthDeps {
  config: GatewayConfig;
  router: ServiceRouter;
  origins: OriginPolicy;
  access: AccessChecker;
}

/** Registers /verify on the gateway's encapsulated instance. */
export function registerForwardAuth(app: FastifyInstance, deps: ForwardAuthDeps): void {
  const { config, router, origins, access } = deps;

  const findService = (req: FastifyRequest): ServiceRoute | undefined => {
    const explicit = (req.query as Record<string, unknown>).service;
    if (typeof explicit === "string") return router.byName(explicit);
    const host = first(req.headers["x-forwarded-host"]);
    const uri = first(req.headers["x-forwarded-uri"]) ?? first(req.headers["x-original-uri"]);
    return router.byHost(host) ?? router.byPath(uri);
  };

  const deny = (reply: FastifyReply, status: number, challenge: string | undefined, message: string) => {
    if (challenge) reply.header("www-authenticate", challenge);
    return reply
      .code(status)
      .header("cache-control", "no-store")
      .header("content-type", "application/json; charset=utf-8")
      .send(jsonRpcError(message));
  };

  app.route({
    method: ["GET", "POST", "HEAD"],
    url: "/verify",
    exposeHeadRoute: false,
    handler: async (req, reply) => {
      const route = findService(req);
      if (!route) {
        const challenge = bearerChallenge({
          error: "invalid_request",
          description: "No service matches this request",
        });
        return deny(reply, 401, challenge, "No service matches this request");
      }
      const method = first(req.headers["x-forwarded-method"]) ?? first(req.headers["x-original-method"]);
      if (method?.toUpperCase() === "OPTIONS")
        return reply.code(200).header("cache-control", "no-store").send();

      const host = first(req.headers["x-forwarded-host"]);
      const proto = first(req.headers["x-forwarded-proto"]) ?? "http";
      const origin = first(req.headers.origin);
      if (!origins.isAllowed(origin, route.name, host ? `${proto}://${host}` : undefined)) {
        return deny(reply, 403, undefined, "Origin not allowed");
      }

      const outcome =
        access.checkCached(req.headers.authorization, route) ??
        (await access.check(req.headers.authorization, route));
      if (!outcome.ok) return deny(reply, outcome.status, outcome.challenge, outcome.message);
      return reply
        .code(200)
        .header("cache-control", "no-store")
        .headers(identityHeaders(outcome.claims, config.gateway.identity_headers))
        .send();
    },
  });
}
