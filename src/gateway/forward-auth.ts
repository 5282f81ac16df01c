/**
 * `GET|POST|HEAD /verify`: the same decision as the built-in proxy, for a reverse proxy that
 * asks before it forwards (Traefik forwardAuth, Caddy forward_auth, nginx auth_request).
 *
 * The service comes from `/verify?service=NAME` in the proxy's configuration, or, without it,
 * from a trusted proxy's `X-Forwarded-*` headers when they are unambiguous (verify-target.ts).
 * The Origin check admits only origins the configuration names (origin.ts): a forwarded Host
 * is the client's to choose, so it never widens what is allowed.
 *
 * Answers: 200 with the identity headers (all four, empty when the token has no value, so a
 * proxy that copies them always overwrites what the client sent); 401/403 with the same
 * WWW-Authenticate as the built-in proxy. A request for no known service gets 401 (not 404):
 * nginx's auth_request turns any status other than 2xx/401/403 into a 500, and failing
 * closed with a challenge is right for all three proxies. Preflights (`X-Forwarded-Method:
 * OPTIONS` with the browser's Origin and Access-Control-Request-Method) carry no token by
 * design and are let through, without identity, for the upstream to answer.
 *
 * Two lanes, one decision: the fastify route answers everything; a shortcut ahead of fastify
 * (src/http/server.ts) answers only the common case it can decide without waiting, a token
 * whose verdict is cached and admitted, with the same status and headers. Both find the
 * service with the same VerifyTargets, from the raw request, and decide Origin and token with
 * the same Admission (admission.ts) the MCP endpoint's lanes use; both record the same access
 * line, metrics and audit (test/gateway/verify-shortcut.test.ts sends each request to both).
 */
import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import type { FastifyInstance, FastifyReply } from "fastify";
import type { GatewayConfig } from "../config/schema.js";
import type { Shortcut } from "../http/server.js";
import type { RequestLog } from "../ops/request-log.js";
import type { Tracing } from "../ops/tracing.js";
import type { AccessTokenClaims } from "../tokens/claims.js";
import type { Admission } from "./admission.js";
import type { EndpointPages } from "./browser-page.js";
import { bearerChallenge } from "./challenge.js";
import { jsonRpcError } from "./errors.js";
import { declaresBody, identityHeaders } from "./headers.js";
import { traceDecision, traceRequest } from "./request-trace.js";
import { VERIFY_PATH, type VerifyTargets } from "./verify-target.js";

export interface ForwardAuthDeps {
  config: GatewayConfig;
  targets: VerifyTargets;
  /** Origin and token, the steps every lane shares (admission.ts). */
  admission: Admission;
  /** One span per /verify when tracing is on (the shortcut is then not used: plugin.ts). */
  tracing?: Tracing;
  /** The page a browser's refused GET gets (browser-page.ts). */
  pages: EndpointPages;
}

/** Registers /verify on the gateway's encapsulated instance. */
export function registerForwardAuth(app: FastifyInstance, deps: ForwardAuthDeps): void {
  const { config, admission, targets, tracing, pages } = deps;

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
    url: VERIFY_PATH,
    exposeHeadRoute: false,
    handler: async (req, reply) => {
      const { route, refusal } = targets.find(req.raw);
      const span = tracing && traceRequest(tracing, req, reply, route);
      if (!route) {
        const challenge = bearerChallenge({ error: "invalid_request", description: refusal });
        return deny(reply, 401, challenge, refusal);
      }
      if (targets.isPreflight(req.raw)) return reply.code(200).header("cache-control", "no-store").send();
      if (!admission.originAllowed(req.raw, route)) return deny(reply, 403, undefined, "Origin not allowed");
      // A cached verdict is decided at once: no await (and no microtask) for it.
      const decided = admission.token(req.raw, route);
      const outcome = decided instanceof Promise ? await decided : decided;
      if (span) traceDecision(span, outcome);
      if (!outcome.ok) {
        // Only what is shown depends on the forwarded method: the decision above does not.
        const method = req.headers["x-forwarded-method"];
        if (
          pages.wanted(req, outcome.status, typeof method === "string" ? method.toUpperCase() : req.method)
        ) {
          const sent = pages.send(reply, route, { "www-authenticate": outcome.challenge });
          if (sent) return sent;
        }
        return deny(reply, outcome.status, outcome.challenge, outcome.message);
      }
      return reply
        .code(200)
        .header("cache-control", "no-store")
        .headers(identityHeaders(outcome.claims, config.gateway.identity_headers))
        .send();
    },
  });
}

/**
 * Whether the shortcut may take a request at all, before anything is decided: `/verify` or
 * `/verify?…` exactly (an odd path is fastify's 404), and no body to read or limit (a GET, a
 * HEAD, or a POST that declares none).
 */
export function shortcutShaped(req: IncomingMessage): boolean {
  const url = req.url as string;
  if (!url.startsWith(VERIFY_PATH) || (url.length > VERIFY_PATH.length && url[VERIFY_PATH.length] !== "?"))
    return false;
  const method = req.method;
  return method === "GET" || method === "HEAD" || (method === "POST" && !declaresBody(req.headers));
}

/**
 * The /verify shortcut: a GET, HEAD or bodiless POST whose token verdict is cached and admits
 * the user gets the route's 200 without fastify. It takes the route's steps with the route's
 * parts (VerifyTargets, then the preflight rule, then Admission) and declines, untouched,
 * whatever the route would not answer with that 200: no service, a preflight, a foreign
 * Origin, no token, an uncached or refused verdict.
 */
export function verifyShortcut(deps: ForwardAuthDeps & { requests: RequestLog }): Shortcut {
  const { config, admission, requests, targets } = deps;
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
    if (!shortcutShaped(req)) return false;
    const startedAt = performance.now();
    const { route } = targets.find(req);
    if (!route || targets.isPreflight(req)) return false;
    const claims = admission.admittedNow(req, route);
    if (!claims) return false;

    res.writeHead(200, answerFor(claims));
    res.end();
    requests.shortcutAnswered(VERIFY_PATH, req, 200, startedAt);
    return true;
  };
}
