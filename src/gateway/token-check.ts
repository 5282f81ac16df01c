/**
 * Access token verification (RFC 9068 JWTs signed by the KeyRing). The crypto result is cached
 * per token string for a few seconds so repeat requests do no signature check; the revocation
 * list is consulted on every request through `Revocations.isRevoked`, whose own cache is what
 * bounds how long a revocation takes to bite (`tokens.revocation_cache`).
 */
import { type JWTHeaderParameters, errors as joseErrors, jwtVerify } from "jose";
import { canonicalResource } from "../config/resources.js";
import { ACCESS_TOKEN_TYP, type AccessTokenClaims } from "../oauth/claims.js";
import type { KeyRing, SigningAlg } from "../oauth/keys.js";
import type { Revocations } from "../store/revocations.js";

/** The only algorithms the KeyRing signs with; anything else (and `none`) is refused. */
const ALGORITHMS: SigningAlg[] = ["ES256", "RS256", "EdDSA"];
/** Allowed clock skew between instances for exp/nbf/iat, in seconds. */
const CLOCK_TOLERANCE_S = 5;
/** How long a verified signature is trusted without re-checking it. */
const VERIFIED_CACHE_MS = 10_000;
/** Bound on cached verifications (oldest evicted first), so distinct tokens cannot grow memory. */
const MAX_CACHED = 10_000;

/** A token that passed signature, typ, iss, exp/nbf and revocation checks. */
export interface VerifiedToken {
  claims: AccessTokenClaims;
  /** Canonical audience values, computed once per token. */
  audiences: Set<string>;
  /** The token's scopes. */
  scopes: Set<string>;
}

export type VerifyResult = { ok: true; token: VerifiedToken } | { ok: false; description: string };

interface CacheEntry {
  token: VerifiedToken;
  /** Epoch ms after which the entry must be re-verified. */
  until: number;
  /** Token expiry, epoch ms (with tolerance). */
  expiresAt: number;
}

class KeyNotFound extends Error {}

export class TokenVerifier {
  private readonly cache = new Map<string, CacheEntry>();

  constructor(
    private readonly keys: KeyRing,
    private readonly revocations: Revocations,
    /** Expected `iss`: the gateway's public URL. */
    private readonly issuer: string,
  ) {}

  /** Verifies a bearer token string. Never throws for bad tokens. */
  async verify(token: string): Promise<VerifyResult> {
    const now = Date.now();
    let entry = this.cache.get(token);
    if (entry && (entry.until <= now || entry.expiresAt <= now)) {
      this.cache.delete(token);
      entry = undefined;
    }
    if (!entry) {
      const result = await this.verifySignature(token);
      if (!result.ok) return result;
      entry = result.entry;
      if (this.cache.size >= MAX_CACHED) {
        const oldest = this.cache.keys().next().value;
        if (oldest !== undefined) this.cache.delete(oldest);
      }
      this.cache.set(token, entry);
    }
    const { claims } = entry.token;
    const revoked = await this.revocations.isRevoked({
      jti: claims.jti,
      sid: claims.sid,
      client_id: claims.client_id,
      sub: claims.sub,
      iat: claims.iat,
    });
    if (revoked) {
      this.cache.delete(token);
      return { ok: false, description: "The access token has been revoked" };
    }
    return { ok: true, token: entry.token };
  }

  private async verifySignature(
    token: string,
  ): Promise<{ ok: true; entry: CacheEntry } | { ok: false; description: string }> {
    try {
      const { payload } = await jwtVerify(token, (header: JWTHeaderParameters) => this.keyFor(header), {
        algorithms: ALGORITHMS,
        typ: ACCESS_TOKEN_TYP,
        issuer: this.issuer,
        clockTolerance: CLOCK_TOLERANCE_S,
        requiredClaims: ["exp", "iat", "sub", "aud", "jti"],
      });
      const claims = payload as unknown as AccessTokenClaims;
      const shapeError = checkShape(claims);
      if (shapeError) return { ok: false, description: shapeError };
      const now = Date.now();
      const expiresAt = (claims.exp + CLOCK_TOLERANCE_S) * 1000;
      const audiences = new Set(
        (Array.isArray(claims.aud) ? claims.aud : [claims.aud])
          .map((a) => canonicalResource(a))
          .filter((a): a is string => a !== undefined),
      );
      const scopes = new Set((claims.scope ?? "").split(" ").filter(Boolean));
      return {
        ok: true,
        entry: {
          token: { claims, audiences, scopes },
          until: Math.min(now + VERIFIED_CACHE_MS, expiresAt),
          expiresAt,
        },
      };
    } catch (err) {
      return { ok: false, description: describe(err) };
    }
  }

  private async keyFor(header: JWTHeaderParameters) {
    const found = await this.keys.verificationKey(header.kid);
    // The key's own algorithm must be the one the header names: no algorithm confusion.
    if (!found || found.alg !== header.alg) throw new KeyNotFound();
    return found.key;
  }
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

/** A public description of why a token was refused; specific enough to debug, never the token. */
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
