/**
 * Verifies an access token minted by this gateway: the one rule shared by the resource side
 * (gateway/token-check.ts) and the authorization server (introspection, revocation).
 * Signature by a published key whose algorithm the header names (never `none`, never a key
 * from the token), `typ: at+jwt` (RFC 9068 §4), issuer, expiry, not-before, an issue time that
 * is not in the future, and the claims the gateway relies on. Audience and revocation are the
 * caller's: they depend on where the token is used.
 */
import { type JWTHeaderParameters, errors as joseErrors, jwtVerify } from "jose";
import { StoreUnavailableError } from "../store/errors.js";
import { ACCESS_TOKEN_TYP, type AccessTokenClaims, SIGNING_ALGORITHMS } from "./claims.js";
import type { VerificationKeys } from "./key-set.js";

/** Allowed clock skew between instances for exp/nbf, in seconds. */
export const CLOCK_TOLERANCE_S = 5;
/**
 * How far ahead of this clock a token's `iat` may be. A token "issued" later than that was not
 * minted by an instance whose clock is sane: either a forged issue time under a leaked key or
 * a badly skewed clock, and either way revocation marks (compared with `iat`) would miss it.
 */
export const MAX_IAT_AHEAD_S = 60;

/** A refused token; the message is a public description, specific enough to debug, never the token. */
export class InvalidAccessToken extends Error {
  override readonly name = "InvalidAccessToken";
}

class KeyNotFound extends Error {}

export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token);
}

export async function verifyAccessToken(
  token: string,
  keys: VerificationKeys,
  issuer: string,
  options: { ignoreExpiry?: boolean } = {},
): Promise<AccessTokenClaims> {
  let claims: AccessTokenClaims;
  try {
    const keyFor = async (header: JWTHeaderParameters) => {
      const found = await keys.verificationKey(header.kid);
      // The key's own algorithm must be the one the header names: no algorithm confusion.
      if (!found || found.alg !== header.alg) throw new KeyNotFound();
      return found.key;
    };
    const { payload } = await jwtVerify(token, keyFor, {
      algorithms: [...SIGNING_ALGORITHMS],
      typ: ACCESS_TOKEN_TYP,
      issuer,
      clockTolerance: CLOCK_TOLERANCE_S,
      requiredClaims: ["exp", "iat", "sub", "aud", "jti"],
      ...(options.ignoreExpiry ? { currentDate: new Date(0) } : {}),
    });
    claims = payload as unknown as AccessTokenClaims;
  } catch (err) {
    // The key set could not be read (an unknown kid reloads it): the token is not invalid, the
    // store is down, and the caller answers 503.
    if (err instanceof StoreUnavailableError) throw err;
    throw new InvalidAccessToken(describe(err));
  }
  const shapeError = checkShape(claims) ?? checkIssueTime(claims, options.ignoreExpiry === true);
  if (shapeError) throw new InvalidAccessToken(shapeError);
  return claims;
}

function checkShape(claims: AccessTokenClaims): string | undefined {
  for (const name of ["sub", "client_id", "jti", "sid"] as const) {
    if (typeof claims[name] !== "string" || claims[name] === "") return `The access token has no ${name}`;
  }
  if (claims.scope !== undefined && typeof claims.scope !== "string")
    return "The access token's scope is malformed";
  if (claims.groups !== undefined && !Array.isArray(claims.groups))
    return "The access token's groups are malformed";
  return undefined;
}

function checkIssueTime(claims: AccessTokenClaims, ignoreTime: boolean): string | undefined {
  if (ignoreTime) return undefined;
  return claims.iat > Date.now() / 1000 + MAX_IAT_AHEAD_S
    ? "The access token was issued in the future"
    : undefined;
}

function describe(err: unknown): string {
  if (err instanceof KeyNotFound || err instanceof joseErrors.JWKSNoMatchingKey) {
    return "The access token was not signed by a key of this gateway";
  }
  if (err instanceof joseErrors.JWTExpired) return "The access token expired";
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return "The access token's algorithm is not allowed";
  if (err instanceof joseErrors.JWSSignatureVerificationFailed)
    return "The access token's signature is invalid";
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === "typ") return "The token is not an access token";
    if (err.claim === "iss") return "The access token was issued by someone else";
    if (err.claim === "nbf") return "The access token is not valid yet";
    return `The access token's ${err.claim} claim is invalid`;
  }
  return "The access token is malformed";
}
