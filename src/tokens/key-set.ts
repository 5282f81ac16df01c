/**
 * The keys that verify access tokens, as the resource side holds them: public keys only.
 *
 * The authorization server's KeyRing (oauth/keys.ts) creates, seals and rotates signing keys and
 * publishes each one's public JWK in the store (namespace `keys`, STORAGE.md). A PublicKeySet
 * reads only those public parts, so the gateway's token check can verify but never sign, and
 * never needs the sealing secret.
 */
import { type CryptoKey, importJWK, type JWK } from "jose";
import type { Store } from "../store/store.js";
import type { SigningAlg } from "./claims.js";

/** What verifying an access token needs: the public key of a kid, with the algorithm it is for. */
export interface VerificationKeys {
  verificationKey(kid: string | undefined): Promise<{ key: CryptoKey; alg: SigningAlg } | undefined>;
}

/** The public fields of a stored key (the KeyRing's record holds more). */
export interface PublishedKey {
  kid: string;
  alg: SigningAlg;
  public_jwk: JWK;
  created_at: number;
}

export const KEYS_NAMESPACE = "keys";

/** Reload at least this often, so a rotation on another instance is picked up. */
const RELOAD_EVERY_MS = 60_000;
/** An unknown kid triggers a reload, but not more often than this (no store storm from junk tokens). */
const UNKNOWN_KID_RELOAD_MS = 5_000;

interface LoadedPublicKey {
  alg: SigningAlg;
  key: CryptoKey;
}

export class PublicKeySet implements VerificationKeys {
  private keys = new Map<string, LoadedPublicKey>();
  private lastUnknownReload = 0;
  private timer?: NodeJS.Timeout;

  private constructor(private readonly store: Store) {}

  /** Loads the published keys now and keeps them fresh until close(). */
  static async open(store: Store): Promise<PublicKeySet> {
    const set = new PublicKeySet(store);
    await set.reload();
    // A failed periodic reload keeps the keys it has: they stay valid until rotated out.
    set.timer = setInterval(() => void set.reload().catch(() => undefined), RELOAD_EVERY_MS);
    set.timer.unref();
    return set;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Re-reads the published keys (a key never changes under its kid, so known ones are kept). */
  async reload(): Promise<void> {
    const entries = await this.store.list<Record<string, never>>(KEYS_NAMESPACE);
    const next = new Map<string, LoadedPublicKey>();
    for (const { value } of entries) {
      const published = value as unknown as PublishedKey;
      const known = this.keys.get(published.kid);
      next.set(
        published.kid,
        known ?? {
          alg: published.alg,
          key: (await importJWK(published.public_jwk, published.alg)) as CryptoKey,
        },
      );
    }
    this.keys = next;
  }

  /** The public key of a kid; an unknown kid reloads from the store (rate-limited) first. */
  async verificationKey(kid: string | undefined): Promise<LoadedPublicKey | undefined> {
    if (kid === undefined) return undefined;
    let found = this.keys.get(kid);
    if (!found && Date.now() - this.lastUnknownReload > UNKNOWN_KID_RELOAD_MS) {
      this.lastUnknownReload = Date.now();
      await this.reload();
      found = this.keys.get(kid);
    }
    return found;
  }
}
