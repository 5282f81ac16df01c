/**
 * Access token verification (RFC 9068 JWTs signed by the KeyRing). The crypto result is cached
 * per token string for a few seconds (a TtlCache, src/cache/) so repeat requests do no
 * signature check; the revocation list is consulted on every request through
 * `Revocations.isRevoked`, whose own cache is what bounds how long a revocation takes to bite
 * (`tokens.revocation_cache`); a revocation published on the store's change feed removes the
 * verdict sooner, within a second on every instance (tokens/revocations.ts).
 *
 * While the store cannot answer, a token whose revocation verdict was read within that bound is
 * still admitted from the cache, and no longer: the bound holds through an outage (a verdict is
 * never stretched because the store is down), and past it the check throws
 * StoreUnavailableError, which the subtree answers with 503.
 */
import { type CacheRegistry, TtlCache } from "../cache/ttl-cache.js";
import { canonicalResource } from "../config/resources.js";
import type { AccessTokenClaims } from "../tokens/claims.js";
import type { VerificationKeys } from "../tokens/key-set.js";
import type { Revocations } from "../tokens/revocations.js";
import { CLOCK_TOLERANCE_S, InvalidAccessToken, verifyAccessToken } from "../tokens/verify.js";

/** How long a verified signature is trusted without re-checking it. */
const VERIFIED_CACHE_MS = 10_000;
/** Bound on cached verifications (oldest evicted first), so distinct tokens cannot grow memory. */
const MAX_CACHED = 10_000;

/**
 * What a verification is found by in the cache: the token's last characters, part of a JWT's
 * signature, rather than all of it (hashing the whole token was a cached /verify's largest cost;
 * TtlCache `indexBy`). The cache compares the whole token on a hit. A forged token ending like a
 * cached one finds that entry, is not it, and is verified in full (and never stored).
 */
const INDEX_CHARS = 32;
const tokenTail = (token: string): string =>
  token.length > INDEX_CHARS ? token.slice(token.length - INDEX_CHARS) : token;

/** A token that passed signature, typ, iss, exp/nbf and revocation checks. */
export interface VerifiedToken {
  claims: AccessTokenClaims;
  /** Canonical audience values, computed once per token. */
  audiences: Set<string>;
  /** The token's scopes. */
  scopes: Set<string>;
}

export type VerifyResult = { ok: true; token: VerifiedToken } | { ok: false; description: string };

export class TokenVerifier {
  /** Token string -> its verified claims, until the earlier of VERIFIED_CACHE_MS and its expiry. */
  private readonly cache: TtlCache<VerifiedToken>;

  constructor(
    private readonly keys: VerificationKeys,
    private readonly revocations: Revocations,
    /** Expected `iss`: the gateway's public URL. */
    private readonly issuer: string,
    /** Where /metrics finds the cache. */
    caches?: CacheRegistry,
  ) {
    this.cache = new TtlCache<VerifiedToken>("token_check", MAX_CACHED, {
      registry: caches,
      indexBy: tokenTail,
    });
  }

  /**
   * The hot path, synchronous: a token whose signature and revocation verdicts are both still
   * cached and good. Undefined means "ask verify()", not "refused". Allocates nothing.
   */
  verifyCached(token: string): VerifiedToken | undefined {
    const now = Date.now();
    const verified = this.cache.get(token, now);
    if (verified === undefined) return undefined;
    return this.revocations.cachedVerdict(verified.claims.jti, now) === false ? verified : undefined;
  }

  /** Verifies a bearer token string. Never throws for bad tokens. */
  async verify(token: string): Promise<VerifyResult> {
    let verified = this.cache.get(token);
    if (!verified) {
      const result = await this.verifySignature(token);
      if (!result.ok) return result;
      verified = result.token;
      this.cache.set(token, verified, result.ttlMs);
    }
    const { claims } = verified;
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
    return { ok: true, token: verified };
  }

  private async verifySignature(
    token: string,
  ): Promise<{ ok: true; token: VerifiedToken; ttlMs: number } | { ok: false; description: string }> {
    let claims: AccessTokenClaims;
    try {
      claims = await verifyAccessToken(token, this.keys, this.issuer);
    } catch (err) {
      if (err instanceof InvalidAccessToken) return { ok: false, description: err.message };
      throw err;
    }
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
      token: { claims, audiences, scopes },
      // Never past the token's own expiry: the cache's TTL is the only expiry check of the hot path.
      ttlMs: Math.min(VERIFIED_CACHE_MS, expiresAt - now),
    };
  }
}
