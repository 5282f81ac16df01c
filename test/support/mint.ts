/**
 * Test-only access token minter: what the authorization server will issue (RFC 9068 JWT,
 * `typ: at+jwt`, claims per AccessTokenClaims), signed with the KeyRing's current key, plus
 * helpers for deliberately broken tokens.
 */
import { randomUUID } from "node:crypto";
import { type CryptoKey, generateKeyPair, SignJWT } from "jose";
import type { KeyRing } from "../../src/oauth/keys.js";
import { ACCESS_TOKEN_TYP, type AccessTokenClaims } from "../../src/tokens/claims.js";

export interface MintOptions {
  /** Lifetime in seconds from now (negative: already expired). Default 300. */
  ttl?: number;
  /** Override the JOSE `typ` header. */
  typ?: string;
  /** Sign with this key instead of the ring's. */
  signWith?: { kid: string; alg: string; key: CryptoKey };
}

/** Claims with sensible defaults; `iss` and `aud` are required because they are what tests vary. */
export type MintClaims = Partial<AccessTokenClaims> & Pick<AccessTokenClaims, "iss" | "aud">;

export async function mintAccessToken(
  keys: KeyRing,
  claims: MintClaims,
  options: MintOptions = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const signer = options.signWith ?? keys.signingKey();
  const full: AccessTokenClaims = {
    sub: "user-1",
    client_id: "client-1",
    jti: randomUUID(),
    sid: randomUUID(),
    preferred_username: "alice",
    email: "alice@example.com",
    iat: now,
    exp: now + (options.ttl ?? 300),
    ...claims,
  };
  return new SignJWT({ ...full })
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: options.typ ?? ACCESS_TOKEN_TYP })
    .sign(signer.key);
}

/** A signing key that is not in any ring. */
export async function foreignKey(
  kid: string = randomUUID(),
): Promise<{ kid: string; alg: string; key: CryptoKey }> {
  const { privateKey } = await generateKeyPair("ES256");
  return { kid, alg: "ES256", key: privateKey };
}

/** An unsecured JWT (`alg: none`) with the given claims: must always be refused. */
export function unsignedToken(claims: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  return `${b64({ alg: "none", typ: ACCESS_TOKEN_TYP })}.${b64(claims)}.`;
}
