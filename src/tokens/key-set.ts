/**
 * The keys that verify access tokens, as the resource side holds them: public keys only.
 *
 * The authorization server's KeyRing (oauth/keys.ts) creates, seals and rotates signing keys and
 * publishes each one's public JWK in the store (namespace `keys`, STORAGE.md). A PublicKeySet
 * reads only those public parts, so the gateway's token check can verify but never sign, and
 * never needs the sealing secret.
 *
 * A rotation is published on the store's change feed (topic "keys", by publishKeyChange), and
 * every open PublicKeySet reloads when it hears one, so a token signed with a new key verifies
 * on every instance at once. The periodic reload and the reload on an unknown kid stay, for a
 * change the feed missed.
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
/** The change feed topic key changes are published on (the body is the new kid). */
export const KEYS_TOPIC = "keys";

/**
 * Tells every instance on `store` that its keys changed. A failed publish is not an error: the
 * key is stored, and other instances find it on their next reload.
 */
export async function publishKeyChange(store: Store, kid: string): Promise<void> {
  await store.changes.publish(KEYS_TOPIC, kid).catch(() => undefined);
}

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
  private unfollow?: () => void;
  private loading?: Promise<void>;
  private queued?: Promise<void>;
  private readonly changed: Array<() => void> = [];

  private constructor(private readonly store: Store) {}

  /**
   * Loads the published keys now and keeps them fresh until close(): at once when a key change
   * is published, and every minute.
   */
  static async open(store: Store): Promise<PublicKeySet> {
    const set = new PublicKeySet(store);
    await set.reload();
    const reloadNow = () => {
      void set.reload().catch(() => undefined);
      for (const listener of set.changed) listener();
    };
    set.unfollow = await store.changes.subscribe(KEYS_TOPIC, { change: reloadNow, resync: reloadNow });
    // A failed periodic reload keeps the keys it has: they stay valid until rotated out.
    set.timer = setInterval(() => void set.reload().catch(() => undefined), RELOAD_EVERY_MS);
    set.timer.unref();
    return set;
  }

  /** Called when another instance published a key change (the signing side reloads too). */
  onChange(listener: () => void): void {
    this.changed.push(listener);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.unfollow?.();
  }

  /**
   * Re-reads the published keys. One read at a time; a reload asked for while one runs is done
   * once more after it (it may have read the store before the change it was asked for).
   */
  reload(): Promise<void> {
    if (!this.loading) return this.load();
    this.queued ??= this.loading
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.load();
      });
    return this.queued;
  }

  /** The public key of a kid; an unknown kid waits for a reload under way, or reloads (rate-limited). */
  async verificationKey(kid: string | undefined): Promise<LoadedPublicKey | undefined> {
    if (kid === undefined) return undefined;
    let found = this.keys.get(kid);
    if (found) return found;
    // A rotation published but not heard yet (SQLite polls) is heard now, and starts a reload.
    this.store.changes.catchUp();
    const pending = this.queued ?? this.loading;
    if (pending) {
      // A key change was just heard: the token may be signed by the new key.
      await pending.catch(() => undefined);
      found = this.keys.get(kid);
    } else if (Date.now() - this.lastUnknownReload > UNKNOWN_KID_RELOAD_MS) {
      this.lastUnknownReload = Date.now();
      await this.reload();
      found = this.keys.get(kid);
    }
    return found;
  }

  private load(): Promise<void> {
    const loading = this.read().finally(() => {
      if (this.loading === loading) this.loading = undefined;
    });
    this.loading = loading;
    return loading;
  }

  /** Reads the published keys (a key never changes under its kid, so known ones are kept). */
  private async read(): Promise<void> {
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
}
