/**
 * The storage engine: a namespaced key/value store with per-entry expiry and the atomic
 * operations the authorization server needs. Two implementations share one contract test
 * suite: sqlite.ts (embedded default) and redis.ts (many gateway instances).
 *
 * Values are JSON-serialisable objects. Every key and namespace used by the gateway is
 * documented in STORAGE.md. Domain code does not use this directly but through the typed
 * repositories in repos.ts.
 */
import type { ChangeFeed } from "./events.js";
import type { RefreshRotationStore } from "./refresh-rotation.js";

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json | undefined };

export interface Entry<T> {
  key: string;
  value: T;
  /** Epoch milliseconds when the entry disappears; undefined = never. */
  expiresAt?: number;
}

/**
 * Every method throws {@link StoreUnavailableError} (errors.ts) when the engine cannot answer
 * (unreachable, timed out, locked, out of disk); an operation that throws it changed nothing,
 * or, for a lost reply, exactly what it would have changed had it answered.
 */
export interface Store extends RefreshRotationStore {
  /** "sqlite" or "redis", for logs and `doctor`. */
  readonly kind: string;
  /** Where the data lives, for the start-up banner (a file path or a redacted URL). */
  readonly location: string;
  /** Tells every instance on this store what changed, so each drops just that from its caches. */
  readonly changes: ChangeFeed;

  get<T extends Json>(ns: string, key: string): Promise<T | undefined>;
  /** Many keys at once (one round trip on Redis); missing keys are undefined. */
  getMany<T extends Json>(ns: string, keys: string[]): Promise<Array<T | undefined>>;
  /** Insert or replace. ttlSeconds undefined or 0 = no expiry. */
  put(ns: string, key: string, value: Json, ttlSeconds?: number): Promise<void>;
  /** Insert only if absent (or expired). Returns true if this call wrote it. */
  putIfAbsent(ns: string, key: string, value: Json, ttlSeconds?: number): Promise<boolean>;
  /**
   * Atomic read-and-delete: of any number of concurrent callers, exactly one gets the value.
   * This is what makes codes, device codes and refresh tokens single use.
   */
  take<T extends Json>(ns: string, key: string): Promise<T | undefined>;
  /** Returns true if something was deleted. */
  delete(ns: string, key: string): Promise<boolean>;
  /**
   * Deletes these keys of one namespace (absent ones are ignored) and returns how many live
   * entries it deleted: what ending an owner's access does with everything the owner has.
   * One transaction on SQLite; on Redis one multi-key DEL per chunk of keys, per hash slot on
   * Cluster. Not atomic as a whole on Redis: a failure part-way leaves some keys deleted, and
   * repeating the call finishes the job.
   */
  deleteMany(ns: string, keys: string[]): Promise<number>;
  /**
   * `put`, then `changes.publish(topic, key)`, as one step where the engine allows it: one
   * transaction on SQLite (the change row exists exactly when the entry does). On Redis the
   * publish follows the write and is fire-and-forget, as PUBLISH always is: a failed one does
   * not fail the call once the entry is written.
   */
  putAndPublish(
    ns: string,
    key: string,
    value: Json,
    ttlSeconds: number | undefined,
    topic: string,
  ): Promise<void>;
  /** All live entries of a namespace whose key starts with prefix (admin listings, backups). */
  list<T extends Json>(ns: string, prefix?: string): Promise<Array<Entry<T>>>;
  /**
   * Owner indexes: the entries that belong to an owner (`user:{sub}`, `client:{id}`), so that
   * ending an owner's access lists its index instead of scanning a namespace (STORAGE.md). A
   * member names an entry, `{ns}:{key}` by convention; it stays until `ttlSeconds` from now
   * (undefined or 0 = no expiry), and adding it again gives it the new expiry. A member may
   * outlive its entry (readers skip what is gone), so give it at least the entry's lifetime.
   * One set per owner: Redis a sorted set scored by expiry, SQLite a table keyed (owner, member).
   */
  indexAdd(owner: string, member: string, ttlSeconds?: number): Promise<void>;
  /** The live members of an owner's index, in no particular order; [] when it has none. */
  indexMembers(owner: string): Promise<string[]>;
  /** Takes these members out of an owner's index (absent ones are ignored). */
  indexRemove(owner: string, members: string[]): Promise<void>;
  /** Atomic counter with expiry set on first increment (rate limits, failed-login counts). */
  incr(ns: string, key: string, ttlSeconds: number): Promise<number>;
  /**
   * Several {@link incr}s in one store operation (one round trip and, on Redis, one command
   * where the keys share a node), each atomic on its own; the counts in the order given.
   */
  incrMany(ns: string, counters: Array<{ key: string; ttlSeconds: number }>): Promise<number[]>;
  /** Cheap liveness check for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
