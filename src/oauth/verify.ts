/**
 * Verifies an access token minted by this gateway: signature by a key of the ring (never
 * `none`, never a key from the token), `typ: at+jwt` (RFC 9068 §4), issuer and expiry.
 * Audience and revocation are the caller's to check: they depend on where the token is used.
 */
import { decodeProtectedHeader, type JWTHeaderParameters, jwtVerify } from "jose";
import { ACCESS_TOKEN_TYP, type AccessTokenClaims } from "./claims.js";
import type { KeyRing } from "./keys.js";

const ALGORITHMS = ["ES256", "RS256", "EdDSA"];
/** Seconds of clock difference tolerated between instances. */
const CLOCK_TOLERANCE = 30;

export class InvalidAccessToken extends Error {
  override readonly name = "InvalidAccessToken";
}

export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token);
}

export async function verifyAccessToken(
  token: string,
  keys: KeyRing,
  issuer: string,
  options: { ignoreExpiry?: boolean } = {},
): Promise<AccessTokenClaims> {
  if (!looksLikeJwt(token)) throw new InvalidAccessToken("the access token is malformed");
  let header: JWTHeaderParameters;
  try {
    header = decodeProtectedHeader(token) as JWTHeaderParameters;
  } catch {
    throw new InvalidAccessToken("the access token is malformed");
  }
  const key = await keys.verificationKey(header.kid);
  if (!key) throw new InvalidAccessToken("the access token was not signed by this gateway");
  try {
    const { payload } = await jwtVerify(token, key.key, {
      algorithms: ALGORITHMS.filter((a) => a === key.alg),
      issuer,
      typ: ACCESS_TOKEN_TYP,
      clockTolerance: CLOCK_TOLERANCE,
      ...(options.ignoreExpiry ? { currentDate: new Date(0) } : {}),
    });
    const claims = payload as unknown as AccessTokenClaims;
    if (
      typeof claims.sub !== "string" ||
      typeof claims.client_id !== "string" ||
      typeof claims.jti !== "string"
    ) {
      throw new InvalidAccessToken("the access token lacks required claims");
    }
    return claims;
  } catch (err) {
    if (err instanceof InvalidAccessToken) throw err;
    const code = (err as { code?: string }).code;
    throw new InvalidAccessToken(
      code === "ERR_JWT_EXPIRED" ? "the access token has expired" : "the access token is invalid",
    );
  }
}
