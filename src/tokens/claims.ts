/**
 * The access-token contract shared by the authorization server (which mints) and the resource
 * side (which verifies): what an access token says and how it is signed. Access tokens are JWTs
 * per RFC 9068 (`typ: at+jwt`), signed by the authorization server's KeyRing (oauth/keys.ts);
 * the resource side verifies them with public keys only (key-set.ts), without a store round trip.
 */
export interface AccessTokenClaims {
  iss: string;
  /** The user's stable id at the identity provider. */
  sub: string;
  /** The resources (RFC 8707) this token may be used at: service URLs, or the issuer itself. */
  aud: string | string[];
  client_id: string;
  /** Space-separated scopes. */
  scope?: string;
  jti: string;
  /** Grant id: every token of one login (code, refresh family) shares it, so one revocation ends all. */
  sid: string;
  iat: number;
  exp: number;
  auth_time?: number;
  preferred_username: string;
  name?: string;
  email?: string;
  /** Organisations and "org/team" slugs, or OIDC groups (RFC 9068 §2.2.3.1). */
  groups?: string[];
}

/** The JOSE header type RFC 9068 requires; verifiers must check it. */
export const ACCESS_TOKEN_TYP = "at+jwt";

/** The algorithms access tokens are signed with; anything else (and `none`) is refused. */
export type SigningAlg = "ES256" | "RS256" | "EdDSA";
export const SIGNING_ALGORITHMS: readonly SigningAlg[] = ["ES256", "RS256", "EdDSA"];
