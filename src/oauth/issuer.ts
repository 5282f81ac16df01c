/**
 * The one place access tokens are minted (RFC 9068 JWTs), and the response they go out in,
 * with the refresh token the grant handler already stored (refresh-tokens.ts): the response is
 * assembled after every store write, so nothing here can fail half-way through one.
 */
import { randomUUID } from "node:crypto";
import type { Audit } from "../ops/audit.js";
import type { AccessTokenClaims } from "../tokens/claims.js";
import type { Grant } from "./grant-store.js";
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
  /** The grant's refresh token to hand out (already stored), if the client may refresh. */
  refreshToken?: string;
}

export class TokenIssuer {
  constructor(
    private readonly keys: KeyRing,
    private readonly issuer: string,
    private readonly accessTtlSeconds: number,
    private readonly audit: Audit,
  ) {}

  async issue({ grantType, grant, scope, resources, refreshToken }: IssueRequest): Promise<TokenResponse> {
    const now = Math.floor(Date.now() / 1000);
    const { user } = grant;
    // No resource asked for: the token is for the gateway itself (honoured only where configured).
    const audience = resources.length > 0 ? resources : [this.issuer];
    const claims: AccessTokenClaims = {
      client_id: grant.client_id,
      sid: grant.sid,
      auth_time: grant.auth_time,
      preferred_username: user.login,
      ...(scope.length ? { scope: scope.join(" ") } : {}),
      ...(user.name ? { name: user.name } : {}),
      ...(user.email ? { email: user.email } : {}),
      ...(user.groups?.length ? { groups: user.groups } : {}),
      iss: this.issuer,
      sub: user.sub,
      aud: audience.length === 1 ? (audience[0] as string) : audience,
      jti: randomUUID(),
      iat: now,
      exp: now + this.accessTtlSeconds,
    };
    // Header {alg, kid, typ: at+jwt}, signed synchronously (jws-signer.ts).
    const accessToken = this.keys.accessTokenSigner().signJson(claims);

    const response: TokenResponse = {
      access_token: accessToken,
      token_type: "Bearer",
      expires_in: this.accessTtlSeconds,
      ...(scope.length ? { scope: scope.join(" ") } : {}),
    };
    if (refreshToken !== undefined) response.refresh_token = refreshToken;
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
