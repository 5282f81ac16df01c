/**
 * Admission: whether one request may reach one service, the steps every lane takes in the same
 * order with the same parts. The MCP endpoint's route, /verify's route, and the two shortcuts
 * ahead of fastify (proxy-shortcut.ts, forward-auth.ts) all ask here, after finding the
 * service by their endpoint's own rule (ServiceRouter for `/{name}/mcp`, VerifyTargets for
 * /verify, the same rule in both lanes of each endpoint):
 *
 * 1. the Origin (OriginPolicy: only configured origins, never one from a forwarded header), a
 *    403 before any token is looked at;
 * 2. the token (AccessChecker: Bearer, signature, revocation, audience, scopes, policy), with
 *    the client's address from ClientAddresses for the audit event of a refusal.
 *
 * `admittedNow` is both steps as a shortcut may take them: without waiting and without
 * recording anything, so a request it cannot admit at once goes to the route untouched, and
 * the route decides (and audits) it as if no shortcut existed.
 */
import type { IncomingMessage } from "node:http";
import type { ClientAddresses } from "../http/client-address.js";
import type { AccessTokenClaims } from "../tokens/claims.js";
import type { AccessChecker, AccessOutcome } from "./access.js";
import type { OriginPolicy } from "./origin.js";
import type { ServiceRoute } from "./routing.js";

export class Admission {
  constructor(
    private readonly origins: OriginPolicy,
    private readonly access: AccessChecker,
    private readonly clients: ClientAddresses,
  ) {}

  /** Step 1: whether the request's Origin (none: not a browser) may reach `route`. */
  originAllowed(req: IncomingMessage, route: ServiceRoute): boolean {
    return this.origins.isAllowed(req.headers.origin, route.name);
  }

  /**
   * Step 2, for a request whose Origin passed: the token's outcome, at once when its verdict is
   * cached (the common case in a session), else once verified. Refusals of a presented token
   * are audited, naming the client's address as the request log has it.
   */
  token(req: IncomingMessage, route: ServiceRoute): AccessOutcome | Promise<AccessOutcome> {
    const authorization = req.headers.authorization;
    const ip = this.clients.of(req).ip;
    return this.access.checkCached(authorization, route, ip) ?? this.access.check(authorization, route, ip);
  }

  /**
   * Steps 1 and 2 without waiting or recording: the claims when the request is admitted by a
   * cached verdict, undefined for anything else (the route then decides it in full).
   */
  admittedNow(req: IncomingMessage, route: ServiceRoute): AccessTokenClaims | undefined {
    if (!this.originAllowed(req, route)) return undefined;
    return this.access.allowedCached(req.headers.authorization, route);
  }
}
