/**
 * Signing keys for access tokens. Keys live in the store (namespace "keys") so every gateway
 * instance signs and verifies with the same set and a restart loses nothing. Rotation adds a
 * key that signs from then on; older keys stay published until every token they signed has
 * expired, then disappear by TTL. A rotation is published on the store's change feed, so every
 * instance's public key set picks the new key up at once (tokens/key-set.ts).
 *
 * Private keys are always sealed at rest (crypto/sealing.ts) with the secret the composition
 * root resolves (crypto/encryption-secret.ts). Keys an older version stored in the clear are
 * still read, and sealed in place when the ring opens.
 */
import { randomUUID } from "node:crypto";
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import { KeySealingError, type SealedJwk, sealJwk, unsealJwk } from "../crypto/sealing.js";
import type { Store } from "../store/store.js";
import { ACCESS_TOKEN_TYP, type SigningAlg } from "../tokens/claims.js";
import {
  KEYS_NAMESPACE,
  type PublishedKey,
  publishKeyChange,
  type VerificationKeys,
} from "../tokens/key-set.js";
import { JwsSigner } from "./jws-signer.js";

export type { SigningAlg } from "../tokens/claims.js";

/** A key as the ring stores it: the published public part, and the private part. */
interface StoredKey extends PublishedKey {
  /** The private key, sealed. */
  private_sealed?: SealedJwk;
  /** The private key in the clear: only in stores written before keys were sealed by default. */
  private_jwk?: JWK;
  /** Set when a newer key took over: the key is published until then, only for verifying. */
  retire_at?: number;
}

interface LoadedKey {
  kid: string;
  alg: SigningAlg;
  createdAt: number;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
  /** Signs access tokens with this key (node:crypto, synchronous). */
  signer: JwsSigner;
}

const NS = KEYS_NAMESPACE;

export interface KeyRingOptions {
  alg: SigningAlg;
  /** Access token lifetime: how long a key that was rotated out must still verify. */
  accessTtlSeconds: number;
  /** Seals private keys at rest (crypto/encryption-secret.ts resolves it). */
  encryptionSecret: string;
  /** Where the secret came from, for error messages (never the secret). */
  secretSource?: string;
}
/** Reload at least this often, so a rotation on another instance is picked up. */
const RELOAD_EVERY_MS = 60_000;
/** An unknown kid triggers a reload, but not more often than this (no store storm from junk tokens). */
const UNKNOWN_KID_RELOAD_MS = 5_000;

export class KeyRing implements VerificationKeys {
  private keys: LoadedKey[] = [];
  private loadedAt = 0;
  private lastUnknownReload = 0;
  private timer?: NodeJS.Timeout;
  private readonly rotated: Array<() => void> = [];

  private readonly alg: SigningAlg;
  /** Access token lifetime: how long a retired key must still verify. */
  private readonly accessTtlSeconds: number;
  private readonly encryptionSecret: string;
  private readonly secretSource: string;

  private constructor(
    private readonly store: Store,
    options: KeyRingOptions,
  ) {
    this.alg = options.alg;
    this.accessTtlSeconds = options.accessTtlSeconds;
    this.encryptionSecret = options.encryptionSecret;
    this.secretSource = options.secretSource ?? "keys.encryption_secret";
  }

  /**
   * Loads the keys, sealing any left in the clear by an older version, and creates the first one
   * on a fresh store. Throws KeySealingError when a key cannot be unsealed with the secret.
   */
  static async open(store: Store, options: KeyRingOptions): Promise<KeyRing> {
    const ring = new KeyRing(store, options);
    await ring.sealPlainKeys();
    await ring.reload();
    if (ring.keys.length === 0) {
      await ring.rotate();
    }
    ring.timer = setInterval(() => void ring.reload().catch(() => undefined), RELOAD_EVERY_MS);
    ring.timer.unref();
    return ring;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async reload(): Promise<void> {
    const entries = await this.store.list<StoredKey & Record<string, never>>(NS);
    // A key never changes under its kid: reuse what is loaded (unsealing costs a scrypt).
    const known = new Map(this.keys.map((k) => [k.kid, k]));
    const loaded: LoadedKey[] = [];
    for (const { value } of entries) {
      const stored = value as unknown as StoredKey;
      const already = known.get(stored.kid);
      if (already) {
        loaded.push(already);
        continue;
      }
      const privateJwk = this.privateJwk(stored);
      loaded.push({
        kid: stored.kid,
        alg: stored.alg,
        createdAt: stored.created_at,
        privateKey: (await importJWK(privateJwk, stored.alg)) as CryptoKey,
        publicKey: (await importJWK(stored.public_jwk, stored.alg)) as CryptoKey,
        publicJwk: stored.public_jwk,
        signer: new JwsSigner(privateJwk, stored.alg, stored.kid, ACCESS_TOKEN_TYP),
      });
    }
    // Newest first: the first key signs.
    loaded.sort((a, b) => b.createdAt - a.createdAt);
    this.keys = loaded;
    this.loadedAt = Date.now();
  }

  /**
   * Adds a new signing key and schedules the others for removal once the tokens they signed
   * have expired. Returns the new key id.
   */
  async rotate(): Promise<string> {
    const { privateKey, publicKey } = await generateKeyPair(this.alg, { extractable: true });
    const kid = randomUUID();
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: this.alg, use: "sig" };
    const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: this.alg };
    const stored: StoredKey = {
      kid,
      alg: this.alg,
      private_sealed: sealJwk(privateJwk, this.encryptionSecret),
      public_jwk: publicJwk,
      created_at: Date.now(),
    };
    const now = Date.now();
    // Older keys: keep them long enough to verify what they signed (plus a minute of clock slack).
    const keepSeconds = this.accessTtlSeconds + 60;
    for (const { value } of await this.store.list<Record<string, never>>(NS)) {
      const old = value as unknown as StoredKey;
      if (old.retire_at) continue;
      await this.store.put(
        NS,
        old.kid,
        { ...old, retire_at: now + keepSeconds * 1000 } as never,
        keepSeconds,
      );
    }
    await this.store.put(NS, kid, stored as never);
    await this.reload();
    for (const listener of this.rotated) listener();
    // Every other instance (and a running gateway, when this is the admin CLI) reloads at once.
    await publishKeyChange(this.store, kid);
    return kid;
  }

  /** Called after this ring rotated (verifiers elsewhere reload their public keys). */
  onRotate(listener: () => void): void {
    this.rotated.push(listener);
  }

  private privateJwk(stored: StoredKey): JWK {
    if (stored.private_sealed)
      return unsealJwk(stored.private_sealed, this.encryptionSecret, stored.kid, this.secretSource);
    if (stored.private_jwk) return stored.private_jwk;
    throw new KeySealingError(`signing key ${stored.kid} has no private part`);
  }

  /**
   * Seals, in place, the private keys an older version stored in the clear, keeping each key's
   * kid, fields and remaining lifetime. Two instances doing this at once write equivalent
   * records; the last write wins and both are readable.
   */
  private async sealPlainKeys(): Promise<void> {
    for (const { value, expiresAt } of await this.store.list<Record<string, never>>(NS)) {
      const { private_jwk: plain, ...rest } = value as unknown as StoredKey;
      if (!plain || rest.private_sealed) continue;
      const ttlSeconds = expiresAt === undefined ? undefined : Math.ceil((expiresAt - Date.now()) / 1000);
      if (ttlSeconds !== undefined && ttlSeconds <= 0) continue;
      const sealed: StoredKey = { ...rest, private_sealed: sealJwk(plain, this.encryptionSecret) };
      await this.store.put(NS, rest.kid, sealed as never, ttlSeconds);
    }
  }

  /** The key that signs new tokens. */
  signingKey(): { kid: string; alg: SigningAlg; key: CryptoKey } {
    const key = this.keys[0];
    if (!key) throw new Error("no signing key loaded");
    return { kid: key.kid, alg: key.alg, key: key.privateKey };
  }

  /** Signs new access tokens (typ at+jwt) with the key that signs now. */
  accessTokenSigner(): JwsSigner {
    const key = this.keys[0];
    if (!key) throw new Error("no signing key loaded");
    return key.signer;
  }

  /** Public key for a kid; reloads from the store (rate-limited) when the kid is unknown. */
  async verificationKey(kid: string | undefined): Promise<{ key: CryptoKey; alg: SigningAlg } | undefined> {
    const find = () => this.keys.find((k) => k.kid === kid);
    let found = find();
    if (!found && kid && Date.now() - this.lastUnknownReload > UNKNOWN_KID_RELOAD_MS) {
      this.lastUnknownReload = Date.now();
      await this.reload();
      found = find();
    }
    return found ? { key: found.publicKey, alg: found.alg } : undefined;
  }

  /** The JWKS document served at /jwks. */
  jwks(): { keys: JWK[] } {
    if (Date.now() - this.loadedAt > RELOAD_EVERY_MS) void this.reload().catch(() => undefined);
    return { keys: this.keys.map((k) => k.publicJwk) };
  }

  /** For `admin keys list`. */
  describe(): Array<{ kid: string; alg: SigningAlg; createdAt: number; signing: boolean }> {
    return this.keys.map((k, i) => ({ kid: k.kid, alg: k.alg, createdAt: k.createdAt, signing: i === 0 }));
  }
}
