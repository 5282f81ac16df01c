/**
 * The abuse brakes of the authorization server's routes (config `rate_limits`), as fastify
 * preHandler hooks: they run after the body is parsed (the token brake needs the client id)
 * and before the handler. A refusal is a 429 with Retry-After in the route's own shape, through
 * the subtree's error converter: RFC 6749 error JSON `temporarily_unavailable` for machines (a
 * registered code for an overloaded server; clients treat it as "retry later" and keep their
 * tokens), an HTML page for a person. The password-login brake counts failures only, so it
 * lives in the login handler (LoginThrottle).
 */
import type { FastifyRequest } from "fastify";
import {
  addressSubject,
  type Brake,
  type PlannedCount,
  RATE_NAMESPACE,
  RateLimiter,
  type Refusal,
} from "../../ops/rate-limit.js";
import { readCredentials } from "../client-auth.js";
import { DeviceEntryThrottle } from "../device-throttle.js";
import { OAuthError } from "../errors.js";
import type { TokenBrakes } from "../grants/grant.js";
import { LoginThrottle } from "../login-throttle.js";
import type { AuthorizationServer } from "../server.js";

export interface RouteBrakes {
  register(request: FastifyRequest): Promise<void>;
  /** Not counted yet: the token endpoint counts them (TokenBrakes). */
  token(request: FastifyRequest): TokenBrakes;
  authorize(request: FastifyRequest): Promise<void>;
  deviceAuthorization(request: FastifyRequest): Promise<void>;
  login: LoginThrottle;
  /** Wrong user codes at /device; like the login brake, it counts failures in the handler. */
  deviceEntry: DeviceEntryThrottle;
}

function refused(refusal: Refusal, what: string): OAuthError {
  return new OAuthError("temporarily_unavailable", `${what}; try again in ${refusal.retryAfter} s`, {
    status: 429,
    headers: { "retry-after": String(refusal.retryAfter) },
  });
}

/**
 * The client a token request names, read the way client authentication reads it (form, Basic,
 * or the `sub` of a private_key_jwt assertion), without authenticating it: a counter key, never
 * a decision. Undefined when the credentials are malformed (the handler refuses those).
 */
function namedClient(request: FastifyRequest): string | undefined {
  const form = (request.body ?? {}) as Record<string, unknown>;
  const text = (name: string) => (typeof form[name] === "string" ? (form[name] as string) : undefined);
  try {
    return readCredentials(request.headers.authorization, {
      client_id: text("client_id"),
      client_secret: text("client_secret"),
      client_assertion_type: text("client_assertion_type"),
      client_assertion: text("client_assertion"),
    }).clientId;
  } catch {
    return undefined;
  }
}

export function routeBrakes(as: AuthorizationServer): RouteBrakes {
  const limits = as.parts.config.rate_limits;
  const limiter = new RateLimiter(as.parts.store, as.audit, limits.enabled);
  const perAddress = (rule: string, request: FastifyRequest, limit: Brake["limit"]): Brake => ({
    rule,
    subject: { address: addressSubject(request.ip) },
    limit,
  });
  return {
    async register(request) {
      const refusal = await limiter.take([
        perAddress("register.per_address", request, limits.register.per_address),
      ]);
      if (refusal) throw refused(refusal, "too many client registrations from this address");
    },
    token(request) {
      const brakes = [perAddress("token.per_address", request, limits.token.per_address)];
      const clientId = namedClient(request);
      if (clientId)
        brakes.push({
          rule: "token.per_client",
          subject: { client_id: clientId },
          limit: limits.token.per_client,
        });
      const planned = limiter.plan(brakes);
      const refuse = (refusal: Refusal | undefined) => {
        if (refusal)
          throw refused(
            refusal,
            refusal.rule === "token.per_client"
              ? "too many token requests for this client"
              : "too many token requests from this address",
          );
      };
      let counted: Promise<void> | undefined = planned ? undefined : Promise.resolve();
      return {
        count() {
          counted ??= limiter.takePlanned(planned as PlannedCount).then(refuse);
          return counted;
        },
        forStep() {
          if (counted || !planned) return undefined;
          counted = Promise.resolve();
          return {
            ns: RATE_NAMESPACE,
            counters: planned.counters,
            verdict: (counts) => refuse(planned.verdict(counts)),
          };
        },
      };
    },
    async authorize(request) {
      const refusal = await limiter.take([
        perAddress("authorize.per_address", request, limits.authorize.per_address),
      ]);
      if (refusal) throw refused(refusal, "Too many sign-in requests from this address");
    },
    async deviceAuthorization(request) {
      const refusal = await limiter.take([
        perAddress("device_authorization.per_address", request, limits.device_authorization.per_address),
      ]);
      if (refusal) throw refused(refusal, "too many device authorization requests from this address");
    },
    login: new LoginThrottle(limiter, limits.login),
    deviceEntry: new DeviceEntryThrottle(limiter, limits.device),
  };
}
