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
 *
 * Two lanes, one decision: the fastify route answers everything; a shortcut ahead of fastify
 * (src/http/server.ts) answers only the common case it can decide without waiting, a token
 * whose verdict is cached and admitted, with the same status and headers.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { FastifyInstance, FastifyReply } from "fastify";
import type { GatewayConfig } from "../config/schema.js";
import type { Shortcut } from "../http/server.js";
import type { RequestLog } from "../ops/request-log.js";
import type { AccessTokenClaims } from "../tokens/claims.js";
import type { AccessChecker } from "./access.js";
import { bearerChallenge } from "./challenge.js";
import { jsonRpcError } from "./errors.js";
import { declaresBody, identityHeaders } from "./headers.js";
import type { OriginPolicy } from "./origin.js";
import type { ServiceRoute, ServiceRouter } from "./routing.js";

const PATH = "/verify";

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

/** The parts of the decision both lanes share: which service, preflight or not, whose origin. */
class VerifyRequest {
  constructor(private readonly deps: ForwardAuthDeps) {}

  /** `explicit` is `?service=` from the /verify URL, as the query parser left it. */
  service(headers: IncomingHttpHeaders, explicit: unknown): ServiceRoute | undefined {
    const { router } = this.deps;
    if (typeof explicit === "string") return router.byName(explicit);
    const host = first(headers["x-forwarded-host"]);
    const uri = first(headers["x-forwarded-uri"]) ?? first(headers["x-original-uri"]);
    return router.byHost(host) ?? router.byPath(uri);
  }

  isPreflight(headers: IncomingHttpHeaders): boolean {
    const method = first(headers["x-forwarded-method"]) ?? first(headers["x-original-method"]);
    return method?.toUpperCase() === "OPTIONS";
  }

  originAllowed(headers: IncomingHttpHeaders, route: ServiceRoute): boolean {
    const host = first(headers["x-forwarded-host"]);
    const proto = first(headers["x-forwarded-proto"]) ?? "http";
    const origin = first(headers.origin);
    return this.deps.origins.isAllowed(origin, route.name, host ? `${proto}://${host}` : undefined);
  }
}

/** Registers /verify on the gateway's encapsulated instance. */
export function registerForwardAuth(app: FastifyInstance, deps: ForwardAuthDeps): void {
  const { config, access } = deps;
  const verify = new VerifyRequest(deps);

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
    url: PATH,
    exposeHeadRoute: false,
    handler: async (req, reply) => {
      const route = verify.service(req.headers, (req.query as Record<string, unknown>).service);
      if (!route) {
        const challenge = bearerChallenge({
          error: "invalid_request",
          description: "No service matches this request",
        });
        return deny(reply, 401, challenge, "No service matches this request");
      }
      if (verify.isPreflight(req.headers)) return reply.code(200).header("cache-control", "no-store").send();
      if (!verify.originAllowed(req.headers, route)) return deny(reply, 403, undefined, "Origin not allowed");

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

/**
 * The /verify shortcut: a GET, HEAD or bodiless POST whose token verdict is cached and admits
 * the user gets the route's 200 without fastify. Anything else is declined, untouched.
 */
export function verifyShortcut(deps: ForwardAuthDeps & { requests: RequestLog }): Shortcut {
  const { config, access, requests } = deps;
  const verify = new VerifyRequest(deps);
  // The full 200 header block per verified token (claims objects are cached per token).
  const answers = new WeakMap<AccessTokenClaims, OutgoingHttpHeaders>();
  const answerFor = (claims: AccessTokenClaims): OutgoingHttpHeaders => {
    let headers = answers.get(claims);
    if (!headers) {
      headers = {
        "cache-control": "no-store",
        ...identityHeaders(claims, config.gateway.identity_headers),
        "content-length": "0",
      };
      answers.set(claims, headers);
    }
    return headers;
  };

  return (req, res) => {
    const url = req.url as string;
    if (!url.startsWith(PATH) || (url.length > PATH.length && url[PATH.length] !== "?")) return false;
    const method = req.method;
    // The shortcut never reads or limits a body: a POST with one goes the full way.
    if (method !== "GET" && method !== "HEAD" && !(method === "POST" && !declaresBody(req.headers)))
      return false;
    const startedAt = performance.now();

    let explicit: string | undefined;
    if (url.length > PATH.length) {
      const named = new URLSearchParams(url.slice(PATH.length + 1)).getAll("service");
      // Repeated ?service= is fastify's to read (an array, which it ignores).
      if (named.length > 1) return false;
      explicit = named[0];
    }
    const route = verify.service(req.headers, explicit);
    if (!route || verify.isPreflight(req.headers) || !verify.originAllowed(req.headers, route)) return false;
    const claims = access.allowedCached(req.headers.authorization, route);
    if (!claims) return false;

    res.writeHead(200, answerFor(claims));
    res.end();
    requests.shortcutAnswered(PATH, req, 200, startedAt);
    return true;
  };
}
