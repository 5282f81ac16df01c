/**
 * The decision for one request to one service: a valid token for this service's audience, with
 * the service's scopes, held by a user its policy admits. Shared by the built-in proxy and
 * /verify, so both answer with the same status and the same WWW-Authenticate.
 */
import type { ResourceIndex } from "../config/resources.js";
import type { GatewayConfig } from "../config/schema.js";
import { evaluatePolicy } from "../idp/policy.js";
import type { Audit } from "../ops/audit.js";
import { bearerToken } from "../tokens/bearer.js";
import type { AccessTokenClaims } from "../tokens/claims.js";
import { bearerChallenge } from "./challenge.js";
import type { ServiceRoute, ServiceRouter } from "./routing.js";
import type { TokenVerifier, VerifiedToken } from "./token-check.js";

export type AccessOutcome =
  | { ok: true; claims: AccessTokenClaims }
  | { ok: false; status: 401 | 403; challenge: string; message: string; claims?: AccessTokenClaims };

/**
 * Per verified token (cached per token string, token-check.ts), the route it was last admitted
 * to and that outcome, frozen: the same for every request of a session. Audience, scopes and
 * policy depend only on the token and the route (configuration, fixed while the gateway runs);
 * revocation is not in it, verifyCached asks on every request. Refusals are not kept.
 */
interface Admitted {
  route: ServiceRoute;
  outcome: AccessOutcome & { ok: true };
}

/**
 * The Bearer token to look up in the verified-token cache, for the cached lanes only: what
 * bearerToken gives, without its scan of the whole token for a space. Only a token that
 * verified is in the cache, and none holds a space, so a header bearerToken refuses finds
 * nothing here either, and takes check(), which reads it with bearerToken.
 */
function cachedBearer(authorization: string | undefined): string | undefined {
  if (authorization === undefined || authorization.length < 8) return undefined;
  if (!authorization.startsWith("Bearer ") && authorization.slice(0, 7).toLowerCase() !== "bearer ")
    return undefined;
  return authorization.slice(7).trim();
}

export class AccessChecker {
  private readonly audiences = new Map<string, string[]>();
  private readonly admitted = new WeakMap<VerifiedToken, Admitted>();

  constructor(
    private readonly config: GatewayConfig,
    private readonly resources: ResourceIndex,
    private readonly router: ServiceRouter,
    private readonly verifier: TokenVerifier,
    private readonly audit: Audit,
  ) {}

  /**
   * Decides whether `authorization` (the raw header) opens `route`; refusals of a presented
   * token are audited, naming `ip`, the client's address as the request log has it.
   */
  async check(authorization: string | undefined, route: ServiceRoute, ip?: string): Promise<AccessOutcome> {
    return (
      this.checkCached(authorization, route, ip) ??
      this.audited(authorization, route, await this.decide(authorization, route), ip)
    );
  }

  /**
   * The same decision without waiting, when the token's signature and revocation verdicts are
   * cached (the common case for a client in a session); undefined means "use check()".
   */
  checkCached(
    authorization: string | undefined,
    route: ServiceRoute,
    ip?: string,
  ): AccessOutcome | undefined {
    const token = cachedBearer(authorization);
    const verified = token ? this.verifier.verifyCached(token) : undefined;
    return verified && this.audited(authorization, route, this.judge(route, verified), ip);
  }

  /**
   * The claims of a token that is cached and admitted to `route`; undefined for anything else
   * (uncached, refused: nothing is audited here, the caller asks check() for those).
   */
  allowedCached(authorization: string | undefined, route: ServiceRoute): AccessTokenClaims | undefined {
    const token = cachedBearer(authorization);
    const verified = token ? this.verifier.verifyCached(token) : undefined;
    if (!verified) return undefined;
    const outcome = this.judge(route, verified);
    return outcome.ok ? outcome.claims : undefined;
  }

  private audited(
    authorization: string | undefined,
    route: ServiceRoute,
    outcome: AccessOutcome,
    ip: string | undefined,
  ): AccessOutcome {
    // A request with no token at all is the normal first step of discovery, not an event.
    if (!outcome.ok && authorization !== undefined) {
      this.audit.emit({
        type: "access.refused",
        service: route.name,
        status: outcome.status,
        reason: outcome.message,
        client_id: outcome.claims?.client_id,
        user: outcome.claims?.preferred_username,
        ip,
      });
    }
    return outcome;
  }

  private async decide(authorization: string | undefined, route: ServiceRoute): Promise<AccessOutcome> {
    const token = bearerToken(authorization);
    if (token === undefined) return this.refuse(route, 401, undefined, "Authentication required");
    if (token === null) {
      return this.refuse(route, 401, "invalid_token", "The Authorization header is not a Bearer token");
    }
    const verified = await this.verifier.verify(token);
    if (!verified.ok) return this.refuse(route, 401, "invalid_token", verified.description);
    return this.judge(route, verified.token);
  }

  /** Audience, scopes and the service's policy, for a token whose signature and revocation are fine. */
  private judge(route: ServiceRoute, verified: VerifiedToken): AccessOutcome {
    const admitted = this.admitted.get(verified);
    if (admitted?.route === route) return admitted.outcome;
    const outcome = this.judgeAfresh(route, verified);
    if (outcome.ok) this.admitted.set(verified, { route, outcome: Object.freeze(outcome) });
    return outcome;
  }

  private judgeAfresh(route: ServiceRoute, verified: VerifiedToken): AccessOutcome {
    const { claims, audiences, scopes: granted } = verified;
    if (!this.acceptedAudiences(route.name).some((a) => audiences.has(a))) {
      const why = `The access token is not meant for the service ${route.name}`;
      return this.refuse(route, 401, "invalid_token", why, claims);
    }
    const missing = route.service.scopes.filter((s) => !granted.has(s));
    if (missing.length > 0) {
      const why = `The service ${route.name} needs the scope ${missing.join(" ")}`;
      return this.refuse(route, 403, "insufficient_scope", why, claims);
    }
    const decision = evaluatePolicy(route.service, {
      login: claims.preferred_username ?? claims.sub,
      email: claims.email,
      groups: claims.groups,
    });
    if (!decision.allowed) {
      // Not a token problem a new token with more scopes would fix, so not insufficient_scope.
      return this.refuse(
        route,
        403,
        "access_denied",
        `${decision.reason} of the service ${route.name}`,
        claims,
      );
    }
    return { ok: true, claims } as const;
  }

  /** Built only on the refusal path: a good token costs none of this. */
  private refuse(
    route: ServiceRoute,
    status: 401 | 403,
    error: string | undefined,
    description: string,
    claims?: AccessTokenClaims,
  ): AccessOutcome {
    return {
      ok: false,
      status,
      message: description,
      claims,
      challenge: bearerChallenge({
        resourceMetadata: this.router.metadataUrl(route),
        scopes: route.service.scopes,
        error,
        description: error ? description : undefined,
      }),
    };
  }

  private acceptedAudiences(service: string): string[] {
    let list = this.audiences.get(service);
    if (!list) {
      list = this.resources.audiencesFor(service);
      if (this.config.gateway.accept_gateway_audience) list.push(this.resources.gatewayResource);
      this.audiences.set(service, list);
    }
    return list;
  }
}
