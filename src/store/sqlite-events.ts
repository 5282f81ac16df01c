/**
 * The change feed on SQLite (events.ts): a table in the store's own file, so that every process
 * on the file hears every change without any other channel.
 *
 *   changes(id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT, body TEXT, at INTEGER -- epoch ms)
 *
 * Publishing inserts a row. A process that listens reads the rows after the last id it saw every
 * POLL_MS (one indexed read of an almost always empty range; WAL readers never wait for
 * writers), so a change reaches every process within about a quarter of a second. AUTOINCREMENT
 * keeps ids growing even after old rows are deleted. Rows are kept for RETAIN_MS (the store's
 * sweep deletes older ones); a listener that could not read for a good part of that (its process
 * was stopped, the file was unreadable) may have missed rows, and resyncs.
 */
import type Database from "better-sqlite3";
import { type ChangeFeed, type ChangeFeedStats, type ChangeListener, ChangeListeners } from "./events.js";

export const CHANGES_SCHEMA = `
CREATE TABLE IF NOT EXISTS changes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  topic TEXT NOT NULL,
  body TEXT NOT NULL,
  at INTEGER NOT NULL
);
`;

/** How often a listening process looks for new rows. */
const POLL_MS = 250;
/** How long rows are kept. */
const RETAIN_MS = 10 * 60_000;
/** Past this without a successful read, rows may have been swept unseen: resync. */
const STALE_MS = RETAIN_MS / 2;
/** Rows read per step; a longer backlog is read in several steps of one poll. */
const BATCH = 500;

type ChangeRow = { id: number; topic: string; body: string };

export class SqliteChangeFeed implements ChangeFeed {
  private readonly listeners = new ChangeListeners();
  private readonly stmt: ReturnType<typeof prepare>;
  private timer?: NodeJS.Timeout;
  private lastId = 0;
  private lastReadAt = 0;

  constructor(
    db: Database.Database,
    /** The store's guard: turns a database that cannot answer into StoreUnavailableError. */
    private readonly guard: <T>(operation: () => T) => T,
  ) {
    this.stmt = prepare(db);
  }

  async publish(topic: string, body: string): Promise<void> {
    this.guard(() => this.record(topic, body));
  }

  /** Inserts the change row, unguarded: for a store transaction that writes an entry with it. */
  record(topic: string, body: string): void {
    this.stmt.insert.run({ topic, body, at: Date.now() });
  }

  async subscribe(topic: string, listener: ChangeListener): Promise<() => void> {
    if (!this.timer) {
      // Only what is published from now on.
      this.lastId = this.guard(() => this.stmt.last.get()?.id ?? 0);
      this.lastReadAt = Date.now();
      this.timer = setInterval(() => this.poll(), POLL_MS);
      this.timer.unref();
    }
    const remove = this.listeners.add(topic, listener);
    return () => {
      remove();
      if (this.listeners.empty) this.stop();
    };
  }

  /** Reads the table now rather than at the next poll (one indexed read), when listening. */
  catchUp(): void {
    if (this.timer) this.poll();
  }

  stats(): ChangeFeedStats {
    const { received, resyncs } = this.listeners;
    return { received, resyncs, listening: this.timer !== undefined };
  }

  /** Deletes rows older than RETAIN_MS; the store's sweep calls it. */
  prune(now: number = Date.now()): void {
    this.stmt.prune.run({ before: now - RETAIN_MS });
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reads and delivers what was published since the last read. */
  poll(): void {
    const now = Date.now();
    let rows: ChangeRow[];
    try {
      rows = this.stmt.since.all({ after: this.lastId, limit: BATCH });
      while (rows.length > 0) {
        for (const row of rows) {
          this.lastId = row.id;
          this.listeners.deliver(row.topic, row.body);
        }
        rows = rows.length < BATCH ? [] : this.stmt.since.all({ after: this.lastId, limit: BATCH });
      }
    } catch {
      // Unreadable for now (a lock during WAL recovery, an I/O error): the next poll reads on.
      return;
    }
    if (now - this.lastReadAt > STALE_MS) this.listeners.resync();
    this.lastReadAt = now;
  }
}

function prepare(db: Database.Database) {
  return {
    insert: db.prepare<{ topic: string; body: string; at: number }>(
      "INSERT INTO changes (topic, body, at) VALUES (@topic, @body, @at)",
    ),
    last: db.prepare<[], { id: number }>("SELECT id FROM changes ORDER BY id DESC LIMIT 1"),
    since: db.prepare<{ after: number; limit: number }, ChangeRow>(
      "SELECT id, topic, body FROM changes WHERE id > @after ORDER BY id LIMIT @limit",
    ),
    prune: db.prepare<{ before: number }>("DELETE FROM changes WHERE at < @before"),
  };
}
