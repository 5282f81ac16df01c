/**
 * The embedded store: one SQLite file (better-sqlite3, WAL): entries and owner indexes,
 *
 *   kv(ns TEXT, key TEXT, value TEXT -- JSON, expires_at INTEGER NULL -- epoch ms,
 *      PRIMARY KEY (ns, key))
 *   owner_index(owner TEXT, member TEXT, expires_at INTEGER NULL, PRIMARY KEY (owner, member))
 *
 * Both are WITHOUT ROWID tables clustered on their primary key, so a key prefix of one namespace
 * and the members of one owner are each one range of one B-tree, whatever else is stored;
 * and the change feed's table, `changes` (sqlite-events.ts).
 *
 * Expired rows are invisible to every read (each statement filters on `expires_at`), and are
 * swept by an unref'd timer and on close. Single-statement writes (upsert, DELETE … RETURNING)
 * make `take`, `putIfAbsent` and `incr` atomic, also across processes sharing the file; the
 * refresh rotation is one `BEGIN IMMEDIATE` transaction (sqlite-rotation.ts).
 *
 * A database that cannot answer (locked past the busy timeout, disk full, I/O error) throws
 * {@link StoreUnavailableError}; a statement that fails that way has changed nothing.
 *
 * The file is private to the gateway's user: its directory is created 0700, the database 0600
 * (SQLite gives its -wal and -shm files the database's mode), and an older, looser file is
 * tightened on open.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import Database from "better-sqlite3";
import { StoreUnavailableError } from "./errors.js";
import type { RefreshRotation, RotationOutcome } from "./refresh-rotation.js";
import { CHANGES_SCHEMA, SqliteChangeFeed } from "./sqlite-events.js";
import { rotateRefreshRows, type SyncRows } from "./sqlite-rotation.js";
import type { Entry, Json, Store } from "./store.js";
import { assertNamespace, assertOwner, ttlToMillis } from "./validate.js";

/** How often expired rows are deleted; reads never see them anyway. */
const SWEEP_INTERVAL_MS = 60_000;
/** How long a writer waits for another process's lock before SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5_000;

/**
 * The addon better-sqlite3's install built or fetched (build/Release), named to it directly. Its
 * default finds it through the `bindings` package, which parses a stack trace and tries a dozen
 * paths: a few ms of every short command (bench/RESULTS.md, "Admin CLI process"). Anywhere else
 * (a debug build), that default search.
 */
let addonPath: string | null | undefined;
function nativeBinding(): { nativeBinding?: string } {
  if (addonPath === undefined) {
    try {
      const pkg = createRequire(import.meta.url).resolve("better-sqlite3/package.json");
      const file = join(dirname(pkg), "build", "Release", "better_sqlite3.node");
      addonPath = existsSync(file) ? file : null;
    } catch {
      addonPath = null;
    }
  }
  return addonPath ? { nativeBinding: addonPath } : {};
}

/** A row is live when it has no expiry or its expiry is still in the future (`@now`, epoch ms). */
const LIVE = "(expires_at IS NULL OR expires_at > @now)";
const LIVE_OLD_ROW = "(kv.expires_at IS NULL OR kv.expires_at > @now)";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS kv (
  ns TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  expires_at INTEGER,
  PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS owner_index (
  owner TEXT NOT NULL,
  member TEXT NOT NULL,
  expires_at INTEGER,
  PRIMARY KEY (owner, member)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS owner_index_expires_at ON owner_index (expires_at) WHERE expires_at IS NOT NULL;
`;

type Row = { key: string; value: string; expires_at: number | null };

/**
 * SQLite result codes (primary code, extended ones share its prefix) that mean "cannot answer
 * now", not "this call is wrong": the request is refused with 503 and may be retried.
 */
const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|NOMEM|PROTOCOL|READONLY|CORRUPT|NOTADB)/;

/** A failure of the database itself as {@link StoreUnavailableError}; anything else unchanged. */
function unavailable(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof Database.SqliteError && typeof code === "string" && UNAVAILABLE.test(code)) {
    // A lock is released within moments; disk and I/O trouble needs an operator.
    const retryAfterSeconds = /^SQLITE_(BUSY|LOCKED)/.test(code) ? 1 : 30;
    return new StoreUnavailableError(`the SQLite store cannot answer (${code})`, {
      cause: err,
      retryAfterSeconds,
    });
  }
  return err;
}

/** GLOB is case-sensitive (LIKE is not); bracket its metacharacters to match them literally. */
function globPrefix(prefix: string): string {
  return `${prefix.replace(/[*?[]/g, (c) => `[${c}]`)}*`;
}

/** Every statement the store runs, prepared once. */
function prepareStatements(db: Database.Database) {
  return {
    get: db.prepare<{ ns: string; key: string; now: number }, { value: string }>(
      `SELECT value FROM kv WHERE ns = @ns AND key = @key AND ${LIVE}`,
    ),
    put: db.prepare<{ ns: string; key: string; value: string; exp: number | null }>(
      `INSERT INTO kv (ns, key, value, expires_at) VALUES (@ns, @key, @value, @exp)
       ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
    ),
    // The upsert only overwrites a row that has expired, so "absent" includes "expired".
    putIfAbsent: db.prepare<{ ns: string; key: string; value: string; exp: number | null; now: number }>(
      `INSERT INTO kv (ns, key, value, expires_at) VALUES (@ns, @key, @value, @exp)
       ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
       WHERE kv.expires_at IS NOT NULL AND kv.expires_at <= @now`,
    ),
    take: db.prepare<{ ns: string; key: string; now: number }, { value: string }>(
      `DELETE FROM kv WHERE ns = @ns AND key = @key AND ${LIVE} RETURNING value`,
    ),
    delete: db.prepare<{ ns: string; key: string }, { expires_at: number | null }>(
      "DELETE FROM kv WHERE ns = @ns AND key = @key RETURNING expires_at",
    ),
    listAll: db.prepare<{ ns: string; now: number }, Row>(
      `SELECT key, value, expires_at FROM kv WHERE ns = @ns AND ${LIVE} ORDER BY key`,
    ),
    listPrefix: db.prepare<{ ns: string; now: number; glob: string }, Row>(
      `SELECT key, value, expires_at FROM kv WHERE ns = @ns AND key GLOB @glob AND ${LIVE} ORDER BY key`,
    ),
    // An expired counter restarts at 1 with a fresh expiry; a live one keeps its expiry.
    incr: db.prepare<{ ns: string; key: string; exp: number | null; now: number }, { value: string }>(
      `INSERT INTO kv (ns, key, value, expires_at) VALUES (@ns, @key, '1', @exp)
       ON CONFLICT (ns, key) DO UPDATE SET
         value = CASE WHEN ${LIVE_OLD_ROW}
                 THEN CAST(CAST(kv.value AS INTEGER) + 1 AS TEXT) ELSE '1' END,
         expires_at = CASE WHEN ${LIVE_OLD_ROW}
                 THEN kv.expires_at ELSE excluded.expires_at END
       RETURNING value`,
    ),
    indexAdd: db.prepare<{ owner: string; member: string; exp: number | null }>(
      `INSERT INTO owner_index (owner, member, expires_at) VALUES (@owner, @member, @exp)
       ON CONFLICT (owner, member) DO UPDATE SET expires_at = excluded.expires_at`,
    ),
    indexMembers: db.prepare<{ owner: string; now: number }, { member: string }>(
      `SELECT member FROM owner_index WHERE owner = @owner AND ${LIVE}`,
    ),
    indexRemove: db.prepare<{ owner: string; member: string }>(
      "DELETE FROM owner_index WHERE owner = @owner AND member = @member",
    ),
    sweep: db.prepare<{ now: number }>("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= @now"),
    sweepIndex: db.prepare<{ now: number }>(
      "DELETE FROM owner_index WHERE expires_at IS NOT NULL AND expires_at <= @now",
    ),
    ping: db.prepare("SELECT 1"),
  };
}

/** Creates the database file 0600 (in a 0700 directory) before SQLite does it 0644, and tightens existing ones. */
function createPrivately(file: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  closeSync(openSync(file, "a", 0o600));
  for (const path of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      chmodSync(path, 0o600);
    } catch {
      // Absent (-wal, -shm) or not ours to change: `doctor` reports a loose mode.
    }
  }
}

/** SQLite-backed {@link Store}; `path` may be `":memory:"`. */
export class SqliteStore implements Store {
  readonly kind = "sqlite";
  readonly location: string;
  /** Changes published to every process on the file (sqlite-events.ts). */
  readonly changes: SqliteChangeFeed;
  private readonly db: Database.Database;
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly stmt: ReturnType<typeof prepareStatements>;
  private readonly rotation: Database.Transaction<
    (rotation: RefreshRotation, now: number) => RotationOutcome
  >;
  private readonly removeMembers: Database.Transaction<(owner: string, members: string[]) => void>;
  private readonly deleteKeys: Database.Transaction<(ns: string, keys: string[], now: number) => number>;
  private readonly putPublished: Database.Transaction<
    (ns: string, key: string, value: string, exp: number | null, topic: string) => void
  >;

  constructor(path: string) {
    this.location = path === ":memory:" ? path : resolve(path);
    if (path !== ":memory:") createPrivately(this.location);
    this.db = new Database(this.location, nativeBinding());
    this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    this.db.pragma("journal_mode = WAL");
    // WAL + NORMAL is durable against process crashes; only an OS crash can lose the last commits.
    this.db.pragma("synchronous = NORMAL");
    this.db.exec(SCHEMA);
    this.db.exec(CHANGES_SCHEMA);
    this.stmt = prepareStatements(this.db);
    this.changes = new SqliteChangeFeed(this.db, (operation) => this.guard(operation));
    const rows = this.rows();
    this.rotation = this.db.transaction((rotation: RefreshRotation, now: number) =>
      rotateRefreshRows(rows, rotation, now),
    );
    this.removeMembers = this.db.transaction((owner: string, members: string[]) => {
      for (const member of members) this.stmt.indexRemove.run({ owner, member });
    });
    // Each key once (a repeated key would count as deleted only the first time anyway).
    this.deleteKeys = this.db.transaction((ns: string, keys: string[], now: number) => {
      let deleted = 0;
      for (const key of new Set(keys)) {
        const row = this.stmt.delete.get({ ns, key });
        if (row !== undefined && (row.expires_at === null || row.expires_at > now)) deleted++;
      }
      return deleted;
    });
    this.putPublished = this.db.transaction(
      (ns: string, key: string, value: string, exp: number | null, topic: string) => {
        this.stmt.put.run({ ns, key, value, exp });
        this.changes.record(topic, key);
      },
    );
    this.sweepTimer = setInterval(() => this.sweepQuietly(), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  async get<T extends Json>(ns: string, key: string): Promise<T | undefined> {
    return this.guard(() => {
      assertNamespace(ns);
      const row = this.stmt.get.get({ ns, key, now: Date.now() });
      return row ? (JSON.parse(row.value) as T) : undefined;
    });
  }

  async getMany<T extends Json>(ns: string, keys: string[]): Promise<Array<T | undefined>> {
    return this.guard(() => {
      assertNamespace(ns);
      const now = Date.now();
      return keys.map((key) => {
        const row = this.stmt.get.get({ ns, key, now });
        return row ? (JSON.parse(row.value) as T) : undefined;
      });
    });
  }

  async put(ns: string, key: string, value: Json, ttlSeconds?: number): Promise<void> {
    return this.guard(() => {
      assertNamespace(ns);
      this.stmt.put.run({ ns, key, value: JSON.stringify(value), exp: this.expiry(ttlSeconds) });
    });
  }

  async putIfAbsent(ns: string, key: string, value: Json, ttlSeconds?: number): Promise<boolean> {
    return this.guard(() => {
      assertNamespace(ns);
      const exp = this.expiry(ttlSeconds);
      const info = this.stmt.putIfAbsent.run({ ns, key, value: JSON.stringify(value), exp, now: Date.now() });
      return info.changes > 0;
    });
  }

  async take<T extends Json>(ns: string, key: string): Promise<T | undefined> {
    return this.guard(() => {
      assertNamespace(ns);
      const row = this.stmt.take.get({ ns, key, now: Date.now() });
      return row ? (JSON.parse(row.value) as T) : undefined;
    });
  }

  async delete(ns: string, key: string): Promise<boolean> {
    return this.guard(() => {
      assertNamespace(ns);
      // Deletes an expired row too, but reports only a live one as deleted.
      const row = this.stmt.delete.get({ ns, key });
      return row !== undefined && (row.expires_at === null || row.expires_at > Date.now());
    });
  }

  async deleteMany(ns: string, keys: string[]): Promise<number> {
    return this.guard(() => {
      assertNamespace(ns);
      return keys.length ? this.deleteKeys.immediate(ns, keys, Date.now()) : 0;
    });
  }

  /** The entry and its change row in one transaction: one commit, and never one without the other. */
  async putAndPublish(
    ns: string,
    key: string,
    value: Json,
    ttlSeconds: number | undefined,
    topic: string,
  ): Promise<void> {
    return this.guard(() => {
      assertNamespace(ns);
      this.putPublished.immediate(ns, key, JSON.stringify(value), this.expiry(ttlSeconds), topic);
    });
  }

  async list<T extends Json>(ns: string, prefix = ""): Promise<Array<Entry<T>>> {
    return this.guard(() => {
      assertNamespace(ns);
      const now = Date.now();
      const rows = prefix
        ? this.stmt.listPrefix.all({ ns, now, glob: globPrefix(prefix) })
        : this.stmt.listAll.all({ ns, now });
      return rows.map((row) => {
        const entry: Entry<T> = { key: row.key, value: JSON.parse(row.value) as T };
        if (row.expires_at !== null) entry.expiresAt = row.expires_at;
        return entry;
      });
    });
  }

  async indexAdd(owner: string, member: string, ttlSeconds?: number): Promise<void> {
    return this.guard(() => {
      assertOwner(owner);
      this.stmt.indexAdd.run({ owner, member, exp: this.expiry(ttlSeconds) });
    });
  }

  async indexMembers(owner: string): Promise<string[]> {
    return this.guard(() => {
      assertOwner(owner);
      return this.stmt.indexMembers.all({ owner, now: Date.now() }).map((row) => row.member);
    });
  }

  async indexRemove(owner: string, members: string[]): Promise<void> {
    return this.guard(() => {
      assertOwner(owner);
      if (members.length) this.removeMembers(owner, members);
    });
  }

  async incr(ns: string, key: string, ttlSeconds: number): Promise<number> {
    return this.guard(() => {
      assertNamespace(ns);
      const row = this.stmt.incr.get({ ns, key, exp: this.expiry(ttlSeconds), now: Date.now() });
      return Number(row?.value);
    });
  }

  async incrMany(ns: string, counters: Array<{ key: string; ttlSeconds: number }>): Promise<number[]> {
    return this.guard(() => {
      assertNamespace(ns);
      const now = Date.now();
      return counters.map(({ key, ttlSeconds }) =>
        Number(this.stmt.incr.get({ ns, key, exp: this.expiry(ttlSeconds), now })?.value),
      );
    });
  }

  async ping(): Promise<void> {
    return this.guard(() => {
      this.stmt.ping.get();
    });
  }

  async rotateRefresh(rotation: RefreshRotation): Promise<RotationOutcome> {
    return this.guard(() => {
      if (rotation.alongside) assertNamespace(rotation.alongside.ns);
      return this.rotation.immediate(rotation, Date.now());
    });
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    clearInterval(this.sweepTimer);
    this.changes.stop();
    this.sweepQuietly();
    this.db.close();
  }

  /** Deletes expired rows (and old changes) now; returns how many entries. Runs on a timer and at close. */
  sweep(): number {
    const now = Date.now();
    this.changes.prune(now);
    return this.stmt.sweep.run({ now }).changes + this.stmt.sweepIndex.run({ now }).changes;
  }

  private sweepQuietly(): void {
    try {
      this.sweep();
    } catch {
      // A busy database skips one sweep; expired rows stay invisible until the next.
    }
  }

  /** Runs one store operation, turning a database that cannot answer into StoreUnavailableError. */
  private guard<T>(operation: () => T): T {
    try {
      return operation();
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** Live-row access for code that runs inside a transaction. */
  private rows(): SyncRows {
    return {
      get: <T>(ns: string, key: string) => {
        const row = this.stmt.get.get({ ns, key, now: Date.now() });
        return row ? (JSON.parse(row.value) as T) : undefined;
      },
      put: (ns, key, value, ttlSeconds) => {
        this.stmt.put.run({ ns, key, value: JSON.stringify(value), exp: this.expiry(ttlSeconds) });
      },
      delete: (ns, key) => {
        this.stmt.delete.run({ ns, key });
      },
    };
  }

  private expiry(ttlSeconds: number | undefined): number | null {
    const ms = ttlToMillis(ttlSeconds);
    return ms === undefined ? null : Date.now() + ms;
  }
}
