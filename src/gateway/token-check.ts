/**
 * Access token verification (RFC 9068 JWTs signed by the KeyRing). The crypto result is cached
 * per token string for a few seconds so repeat requests do no signature check; the revocation
 * list is consulted on every request through `Revocations.isRevoked`, whose own cache is what
 * bounds how long a revocation takes to bite (`tokens.revocation_cache`).
 *
 * While the store cannot answer, a token whose revocation verdict was read within that bound is
 * still admitted from the cache, and no longer: the bound holds through an outage (a verdict is
 * never stretched because the store is down), and past it the check throws
 * StoreUnavailableError, which the subtree answers with 503.
 */
import { canonicalResource } from "../config/resources.js";
import type { AccessTokenClaims } from "../tokens/claims.js";
import type { VerificationKeys } from "../tokens/key-set.js";
import type { Revocations } from "../tokens/revocations.js";
import { CLOCK_TOLERANCE_S, InvalidAccessToken, verifyAccessToken } from "../tokens/verify.js";

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

export class TokenVerifier {
  private readonly cache = new Map<string, CacheEntry>();

  constructor(
    private readonly keys: VerificationKeys,
    private readonly revocations: Revocations,
    /** Expected `iss`: the gateway's public URL. */
    private readonly issuer: string,
  ) {}

  /**
   * The hot path, synchronous: a token whose signature and revocation verdicts are both still
   * cached and good. Undefined means "ask verify()", not "refused".
   */
  verifyCached(token: string): VerifiedToken | undefined {
    const entry = this.cache.get(token);
    const now = Date.now();
    if (!entry || entry.until <= now || entry.expiresAt <= now) return undefined;
    return this.revocations.cachedVerdict(entry.token.claims.jti) === false ? entry.token : undefined;
  }

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
      entry: {
        token: { claims, audiences, scopes },
        until: Math.min(now + VERIFIED_CACHE_MS, expiresAt),
        expiresAt,
      },
    };
  }
}
