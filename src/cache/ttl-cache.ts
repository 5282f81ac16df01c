/**
 * The gateway's one in-memory cache type: verified access tokens (gateway/token-check.ts),
 * revocation verdicts (tokens/revocations.ts), client metadata documents and client key sets
 * (oauth/cimd.ts, oauth/client-assertion.ts). One policy for all of them:
 *
 * - every entry has its own lifetime (TTL), and a read past it is a miss (the entry goes);
 * - the cache holds at most `max` entries: when it is full, the entry inserted longest ago goes
 *   (a Map keeps insertion order, so that is its first key);
 * - a hit changes nothing. The hot path (/verify) only reads, and every entry is re-read from
 *   its source within its TTL anyway, so moving entries on each hit (LRU) would cost every
 *   request a write for little gain;
 * - entries can be removed one by one (`delete`, an invalidation) or all at once (`clear`);
 * - long keys can be indexed by a part of them (`indexBy`): the whole key is kept in its entry
 *   and compared on every hit, so a lookup answers only for the very key that was stored.
 *
 * Counters are plain numbers, read by /metrics at scrape time (ops/cache-metrics.ts). They count
 * lookups: a request that looks twice counts twice.
 */

/** Why entries left a cache, for the evictions metric. */
export interface RemovalCounts {
  /** Read after its TTL. */
  expired: number;
  /** Pushed out by a newer entry while the cache was full. */
  size: number;
  /** Removed by name (a revocation, a changed document). */
  invalidated: number;
  /** Removed by `clear()` (everything at once). */
  cleared: number;
}

/** What /metrics reads from a cache. */
export interface CacheStats {
  readonly name: string;
  readonly hits: number;
  readonly misses: number;
  readonly size: number;
  readonly removed: Readonly<RemovalCounts>;
}

/** The caches one gateway holds, so /metrics can read them all (each registers itself). */
export class CacheRegistry {
  private readonly list: CacheStats[] = [];

  add(cache: CacheStats): void {
    this.list.push(cache);
  }

  all(): readonly CacheStats[] {
    return this.list;
  }
}

export interface TtlCacheOptions<V> {
  /** Called for every entry that leaves the cache, whatever the reason (replaced ones too). */
  onRemove?: (key: string, value: V) => void;
  /** Where /metrics finds this cache. */
  registry?: CacheRegistry;
  /**
   * The part of a key its entry is found by (default: all of it), for long keys: V8 hashes every
   * character of a new string on each lookup, about 1 µs for a 700-character access token, the
   * largest part of a cached /verify decision. The entry keeps the whole key, and a lookup is a
   * hit only when it is equal (a comparison costs a twentieth of the hash); two keys with the
   * same part share one entry, the one stored later replacing the other.
   */
  indexBy?: (key: string) => string;
}

interface Slot<V> {
  /** The whole key (the map is keyed by its `indexBy` part). */
  key: string;
  value: V;
  /** Epoch ms after which the entry is gone. */
  until: number;
}

export class TtlCache<V> implements CacheStats {
  hits = 0;
  misses = 0;
  readonly removed: RemovalCounts = { expired: 0, size: 0, invalidated: 0, cleared: 0 };
  private readonly slots = new Map<string, Slot<V>>();
  private readonly onRemove?: (key: string, value: V) => void;
  private readonly index: (key: string) => string;

  constructor(
    readonly name: string,
    /** The most entries held at once. */
    readonly max: number,
    options: TtlCacheOptions<V> = {},
  ) {
    this.onRemove = options.onRemove;
    this.index = options.indexBy ?? wholeKey;
    options.registry?.add(this);
  }

  get size(): number {
    return this.slots.size;
  }

  /** The value while it is fresh at `now`; undefined otherwise. Allocates nothing. */
  get(key: string, now: number = Date.now()): V | undefined {
    const index = this.index(key);
    const slot = this.slots.get(index);
    if (slot !== undefined && slot.key === key) {
      if (slot.until > now) {
        this.hits++;
        return slot.value;
      }
      this.remove(index, slot);
      this.removed.expired++;
    }
    this.misses++;
    return undefined;
  }

  /** Keeps `value` for `ttlMs` (nothing is kept for 0 or less), replacing any entry under `key`. */
  set(key: string, value: V, ttlMs: number, now: number = Date.now()): void {
    if (!(ttlMs > 0)) return;
    const index = this.index(key);
    const old = this.slots.get(index);
    if (old !== undefined) {
      this.remove(index, old);
    } else if (this.slots.size >= this.max) {
      const oldest = this.slots.entries().next().value;
      if (oldest !== undefined) {
        this.remove(oldest[0], oldest[1]);
        if (oldest[1].until > now) this.removed.size++;
        else this.removed.expired++;
      }
    }
    this.slots.set(index, { key, value, until: now + ttlMs });
  }

  /** Removes one entry (an invalidation); true if there was one. */
  delete(key: string): boolean {
    const index = this.index(key);
    const slot = this.slots.get(index);
    if (slot === undefined || slot.key !== key) return false;
    this.remove(index, slot);
    this.removed.invalidated++;
    return true;
  }

  /** Removes every entry. */
  clear(): void {
    this.removed.cleared += this.slots.size;
    if (this.onRemove) for (const slot of this.slots.values()) this.onRemove(slot.key, slot.value);
    this.slots.clear();
  }

  private remove(index: string, slot: Slot<V>): void {
    this.slots.delete(index);
    this.onRemove?.(slot.key, slot.value);
  }
}

const wholeKey = (key: string): string => key;
