/**
 * Registered clients (namespace "clients", key = client_id). Secrets and registration access
 * tokens are stored as SHA-256 hashes only. A client expires with the configured client
 * lifetime (`registration.client_ttl`, 0 = never) and then disappears from the store by TTL.
 * A dynamic registration that has not completed a token request lives only
 * `registration.unused_ttl` from its registration: its first token marks it used and gives it
 * the full lifetime.
 */
import type { JWK } from "jose";
import { type CacheRegistry, TtlCache } from "../cache/ttl-cache.js";
import type { Store } from "../store/store.js";
import type { ApplicationType } from "./redirect-uri.js";

export type TokenEndpointAuthMethod =
  | "none"
  | "client_secret_basic"
  | "client_secret_post"
  | "private_key_jwt";

/** The methods that prove a secret the gateway issued (and keeps a hash of). */
const SECRET_METHODS: ReadonlySet<TokenEndpointAuthMethod> = new Set([
  "client_secret_basic",
  "client_secret_post",
]);

/** Client metadata (RFC 7591 §2) as the gateway keeps it. */
export interface ClientMetadata {
  redirect_uris: string[];
  token_endpoint_auth_method: TokenEndpointAuthMethod;
  /**
   * OIDC Registration §2: decides which redirect URIs are allowed; inferred from them when the
   * client sent none. Absent on records saved before it was kept, and on admin-made clients.
   */
  application_type?: ApplicationType;
  grant_types: string[];
  response_types: string[];
  client_name?: string;
  client_uri?: string;
  logo_uri?: string;
  scope?: string;
  contacts?: string[];
  tos_uri?: string;
  policy_uri?: string;
  software_id?: string;
  software_version?: string;
  /** private_key_jwt: the client's public keys, inline or by URL (exactly one of the two). */
  jwks?: { keys: JWK[] };
  jwks_uri?: string;
  /** private_key_jwt: the one algorithm its assertions use, when the client named one. */
  token_endpoint_auth_signing_alg?: string;
}

export interface ClientRecord extends ClientMetadata {
  client_id: string;
  client_secret_hash?: string;
  registration_token_hash?: string;
  /** Seconds since the epoch. */
  client_id_issued_at: number;
  /** Seconds since the epoch; 0 = never. */
  client_secret_expires_at: number;
  /** How the client came to be: dynamic registration, a metadata document, or the admin CLI. */
  source: "dcr" | "cimd" | "admin";
  /** Seconds since the epoch: its first successful token request (absent = never used). */
  first_token_at?: number;
  /** Seconds since the epoch: its latest successful token request, to within USE_MARK_INTERVAL_S. */
  last_used_at?: number;
}

const NS = "clients";

/** Change-feed topic (store/events.ts): a client record was written or deleted; body = client_id. */
export const CLIENTS_TOPIC = "clients";

/** Records held in one instance's client cache at most. */
const MAX_CACHED = 10_000;

/** The per-instance cache of client records that client authentication reads through. */
export interface ClientCacheOptions {
  /**
   * How long a record may be used from memory: the bound on how late a change reaches client
   * authentication when the change feed missed it (the gateway gives it revocation_cache).
   */
  seconds: number;
  /** Where /metrics finds the cache. */
  caches?: CacheRegistry;
}

/**
 * How stale `last_used_at` may get: a client's record is rewritten at most once per this
 * interval, not at every token request (a refresh every few minutes would otherwise be a write
 * each time).
 */
export const USE_MARK_INTERVAL_S = 3600;

export class ClientStore {
  private readonly cache?: TtlCache<ClientRecord>;
  /** Bumped by every change heard: a read that began before one does not fill the cache. */
  private generation = 0;
  /** Caching starts only once the change feed is heard (follow()), so no change is missed. */
  private following = false;

  constructor(
    private readonly store: Store,
    /** `registration.unused_ttl` in seconds; 0 = unused registrations live as long as used ones. */
    private readonly unusedTtlSeconds = 0,
    private readonly cacheOptions?: ClientCacheOptions,
  ) {
    if (cacheOptions && cacheOptions.seconds > 0)
      this.cache = new TtlCache<ClientRecord>("clients", MAX_CACHED, { registry: cacheOptions.caches });
  }

  /**
   * Hears of client changes made by any instance (RFC 7592 updates and deletions, the admin
   * CLI, use marks) and drops just those records from the cache, until the returned function
   * is called. Without it nothing is cached.
   */
  async follow(): Promise<() => void> {
    if (!this.cache) return () => undefined;
    const cache = this.cache;
    const unfollow = await this.store.changes.subscribe(CLIENTS_TOPIC, {
      change: (clientId) => this.forget(clientId),
      resync: () => {
        this.generation++;
        cache.clear();
      },
    });
    this.following = true;
    return () => {
      this.following = false;
      this.generation++;
      cache.clear();
      unfollow();
    };
  }

  /** The record as stored now. */
  async get(clientId: string): Promise<ClientRecord | undefined> {
    return (await this.store.get(NS, clientId)) as ClientRecord | undefined;
  }

  /**
   * The record for client authentication: from this instance's cache while fresh (see
   * ClientCacheOptions), else as stored. Unknown ids are not cached (a client registered on
   * another instance a moment ago must work at once). Callers must not change what they get.
   */
  async cached(clientId: string): Promise<ClientRecord | undefined> {
    const cache = this.cache;
    if (!cache || !this.following) return this.get(clientId);
    const now = Date.now();
    const hit = cache.get(clientId, now);
    if (hit) return hit;
    const generation = this.generation;
    const client = await this.get(clientId);
    if (client && generation === this.generation) {
      // Never past the record's own expiry, when the store drops it.
      const expiresAt = this.expiresAt(client);
      const ttlMs = Math.min(
        (this.cacheOptions?.seconds ?? 0) * 1000,
        expiresAt === undefined ? Number.POSITIVE_INFINITY : expiresAt * 1000 - now,
      );
      if (ttlMs > 0) cache.set(clientId, client, ttlMs, now);
    }
    return client;
  }

  /** When the store drops the record (seconds since the epoch), undefined = never. */
  private expiresAt(client: ClientRecord): number | undefined {
    let expiresAt = client.client_secret_expires_at || undefined;
    if (this.unusedTtlSeconds && client.source === "dcr" && client.first_token_at === undefined) {
      const unusedUntil = client.client_id_issued_at + this.unusedTtlSeconds;
      expiresAt = expiresAt === undefined ? unusedUntil : Math.min(expiresAt, unusedUntil);
    }
    return expiresAt;
  }

  /**
   * Saves a client; it disappears at `client_secret_expires_at` unless that is 0, or, for a
   * dynamic registration never used, `unused_ttl` after it was issued if that comes first.
   */
  async save(client: ClientRecord): Promise<void> {
    const now = Math.floor(Date.now() / 1000);
    const expiresAt = this.expiresAt(client);
    const ttl = expiresAt === undefined ? undefined : Math.max(1, expiresAt - now);
    await this.store.put(NS, client.client_id, client as never, ttl);
    await this.changed(client.client_id);
  }

  /** This instance forgets the record at once; every other one when it hears of the change. */
  private async changed(clientId: string): Promise<void> {
    this.forget(clientId);
    try {
      await this.store.changes.publish(CLIENTS_TOPIC, clientId);
    } catch {
      // The write stands: other instances drop their copy when it expires (cache seconds).
    }
  }

  private forget(clientId: string): void {
    this.generation++;
    this.cache?.delete(clientId);
  }

  /**
   * A token request by `client` succeeded: the first one marks the registration used (and so
   * gives it its full lifetime); later ones refresh `last_used_at` at most once an interval.
   * Metadata-document clients are not stored, so there is nothing to mark.
   */
  async markUsed(client: ClientRecord): Promise<void> {
    if (client.source === "cimd") return;
    const now = Math.floor(Date.now() / 1000);
    if (client.last_used_at !== undefined && now - client.last_used_at < USE_MARK_INTERVAL_S) return;
    // Re-read: the record may have been updated (RFC 7592) or deleted since it was authenticated,
    // and a deleted client must stay deleted. (A delete landing between this read and the write
    // below would be undone; the window is one store round trip, once per client an hour.)
    const current = await this.get(client.client_id);
    if (!current) return;
    await this.save({ ...current, first_token_at: current.first_token_at ?? now, last_used_at: now });
  }

  async delete(clientId: string): Promise<boolean> {
    const deleted = await this.store.delete(NS, clientId);
    await this.changed(clientId);
    return deleted;
  }

  async list(): Promise<ClientRecord[]> {
    return (await this.listWithExpiry()).map((e) => e.client);
  }

  /** Every stored client with when the store drops it (epoch ms; undefined = never). */
  async listWithExpiry(): Promise<Array<{ client: ClientRecord; expiresAt?: number }>> {
    return (await this.store.list(NS)).map((e) => ({
      client: e.value as unknown as ClientRecord,
      expiresAt: e.expiresAt,
    }));
  }

  /** Whether the client authenticates at all (with a secret or a signed assertion). */
  static isConfidential(client: Pick<ClientMetadata, "token_endpoint_auth_method">): boolean {
    return client.token_endpoint_auth_method !== "none";
  }

  /** Whether the client authenticates with a secret the gateway issues (it gets one at registration). */
  static usesSecret(client: Pick<ClientMetadata, "token_endpoint_auth_method">): boolean {
    return SECRET_METHODS.has(client.token_endpoint_auth_method);
  }
}
