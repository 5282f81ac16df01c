/**
 * The one place tokens are minted: an RFC 9068 JWT access token and, when the client may
 * refresh, a rotating opaque refresh token stored by hash under the grant.
 */
import { randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import { newSecret } from "../crypto/secrets.js";
import type { Audit } from "../ops/audit.js";
import { ACCESS_TOKEN_TYP, type AccessTokenClaims } from "../tokens/claims.js";
import type { Grant, GrantStore } from "./grant-store.js";
import type { KeyRing } from "./keys.js";

export interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  refresh_token?: string;
  scope?: string;
}

export interface IssueRequest {
  /** For the audit log. */
  grantType: string;
  grant: Grant;
  /** Scope and audience of this token: equal to or narrower than the grant's. */
  scope: string[];
  resources: string[];
  withRefreshToken: boolean;
  /** A rotated refresh token keeps its predecessor's scope even when this access token is narrower (RFC 6749 §6). */
  refreshScope?: string[];
  refreshResources?: string[];
}

export class TokenIssuer {
  constructor(
    private readonly keys: KeyRing,
    private readonly grants: GrantStore,
    private readonly issuer: string,
    private readonly accessTtlSeconds: number,
    private readonly audit: Audit,
  ) {}

  async issue({
    grantType,
    grant,
    scope,
    resources,
    withRefreshToken,
    refreshScope,
    refreshResources,
  }: IssueRequest): Promise<TokenResponse> {
    const now = Math.floor(Date.now() / 1000);
    const { kid, alg, key } = this.keys.signingKey();
    const { user } = grant;
    // No resource asked for: the token is for the gateway itself (honoured only where configured).
    const audience = resources.length > 0 ? resources : [this.issuer];
    const claims: Omit<AccessTokenClaims, "iss" | "sub" | "aud" | "jti" | "iat" | "exp"> = {
      client_id: grant.client_id,
      sid: grant.sid,
      auth_time: grant.auth_time,
      preferred_username: user.login,
      ...(scope.length ? { scope: scope.join(" ") } : {}),
      ...(user.name ? { name: user.name } : {}),
      ...(user.email ? { email: user.email } : {}),
      ...(user.groups?.length ? { groups: user.groups } : {}),
    };
    const accessToken = await new SignJWT(claims)
      .setProtectedHeader({ alg, kid, typ: ACCESS_TOKEN_TYP })
      .setIssuer(this.issuer)
      .setSubject(user.sub)
      .setAudience(audience.length === 1 ? (audience[0] as string) : audience)
      .setJti(randomUUID())
      .setIssuedAt(now)
      .setExpirationTime(now + this.accessTtlSeconds)
      .sign(key);

    const response: TokenResponse = {
      access_token: accessToken,
      token_type: "Bearer",
      expires_in: this.accessTtlSeconds,
      ...(scope.length ? { scope: scope.join(" ") } : {}),
    };
    if (withRefreshToken) {
      const refreshToken = newSecret();
      await this.grants.saveRefresh(refreshToken, {
        sid: grant.sid,
        client_id: grant.client_id,
        scope: refreshScope ?? scope,
        resources: refreshResources ?? resources,
        issued_at: now,
      });
      // Sliding lifetime: the grant lives as long as its newest refresh token.
      await this.grants.saveGrant(grant);
      response.refresh_token = refreshToken;
    }
    this.audit.emit({
      type: "token.issued",
      grant_type: grantType,
      user: user.login,
      client_id: grant.client_id,
      sid: grant.sid,
      scope,
      resources: audience,
    });
    return response;
  }
}
