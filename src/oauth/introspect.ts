/**
 * POST /introspect (RFC 7662), for authenticated (confidential) clients. A client learns about
 * its own tokens; only the resource servers named in `introspection.allowed_clients` learn about
 * anyone's (RFC 7662 §4: the server decides who may see what). A token that is expired, revoked,
 * malformed, unknown or not the caller's to see is `{ "active": false }`, alike, so probing
 * teaches nothing.
 */
import type { Revocations } from "../tokens/revocations.js";
import { InvalidAccessToken, looksLikeJwt, verifyAccessToken } from "../tokens/verify.js";
import type { ClientAuthenticator } from "./client-auth.js";
import { invalidRequest } from "./errors.js";
import type { GrantStore } from "./grant-store.js";
import type { KeyRing } from "./keys.js";
import { readParams } from "./params.js";

/** What the token-handling endpoints (introspection, revocation) need. */
export interface TokenEndpointDeps {
  keys: KeyRing;
  issuer: string;
  grants: GrantStore;
  revocations: Revocations;
  /** Finds and authenticates the calling client. */
  clients: ClientAuthenticator;
  /** Clients that may introspect tokens of any client (`introspection.allowed_clients`). */
  introspectors?: ReadonlySet<string>;
}

export type IntrospectionResponse = { active: false } | ({ active: true } & Record<string, unknown>);

export class IntrospectionEndpoint {
  constructor(private readonly deps: TokenEndpointDeps) {}

  async handle(
    body: Record<string, unknown> | undefined,
    authorization: string | undefined,
  ): Promise<IntrospectionResponse> {
    const { params } = readParams(body);
    const caller = await this.deps.clients.authenticate(authorization, params, "introspect", {
      requireConfidential: true,
    });
    const token = params.token;
    if (!token) throw invalidRequest("token is required");
    const answer = looksLikeJwt(token) ? await this.accessToken(token) : await this.refreshToken(token);
    return answer.active && !this.maySee(caller.client_id, answer.client_id) ? { active: false } : answer;
  }

  private maySee(caller: string, owner: unknown): boolean {
    return caller === owner || this.deps.introspectors?.has(caller) === true;
  }

  private async accessToken(token: string): Promise<IntrospectionResponse> {
    try {
      const claims = await verifyAccessToken(token, this.deps.keys, this.deps.issuer);
      if (await this.deps.revocations.isRevoked(claims, { fresh: true })) return { active: false };
      return {
        active: true,
        token_type: "Bearer",
        client_id: claims.client_id,
        username: claims.preferred_username,
        scope: claims.scope,
        sub: claims.sub,
        aud: claims.aud,
        iss: claims.iss,
        jti: claims.jti,
        exp: claims.exp,
        iat: claims.iat,
      };
    } catch (err) {
      if (err instanceof InvalidAccessToken) return { active: false };
      throw err;
    }
  }

  private async refreshToken(token: string): Promise<IntrospectionResponse> {
    const refresh = await this.deps.grants.peekRefresh(token);
    if (!refresh || (await this.deps.revocations.isGrantRevoked(refresh.sid))) return { active: false };
    const grant = await this.deps.grants.getGrant(refresh.sid);
    if (!grant) return { active: false };
    return {
      active: true,
      token_type: "refresh_token",
      client_id: refresh.client_id,
      username: grant.user.login,
      sub: grant.user.sub,
      scope: refresh.scope.join(" ") || undefined,
      aud: refresh.resources,
      iss: this.deps.issuer,
      iat: refresh.issued_at,
    };
  }
}
