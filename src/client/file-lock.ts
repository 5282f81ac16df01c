/**
 * A lock file next to the credentials file, so that two `mcp-gateway` processes (a `token` in a
 * shell script and a `connect` under a desktop client, say) never refresh the same refresh
 * token at once: the gateway rotates refresh tokens and treats a reused one as theft, which
 * would end the login for both. Re-entrant within one async call chain.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { closeSync, openSync, statSync, unlinkSync } from "node:fs";

/** A lock older than this was left by a process that died while holding it. */
const STALE_MS = 30_000;
const RETRY_MS = 25;

export class FileLock {
  private readonly held = new AsyncLocalStorage<true>();
  /** Serialises holders inside this process; the lock file serialises processes. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly path: string,
    private readonly waitMs = 15_000,
  ) {}

  /** Runs `fn` while holding the lock; a nested call from inside `fn` runs at once. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.held.getStore()) return fn();
    const turn = this.tail.then(() => this.holding(fn));
    this.tail = turn.catch(() => undefined);
    return turn;
  }

  private async holding<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await this.held.run(true, fn);
    } finally {
      try {
        unlinkSync(this.path);
      } catch {
        // Already gone (removed as stale by another process): nothing to release.
      }
    }
  }

  private async acquire(): Promise<void> {
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      try {
        closeSync(openSync(this.path, "wx", 0o600));
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      if (this.isStale()) {
        try {
          unlinkSync(this.path);
        } catch {
          // Another waiter removed it first; try again.
        }
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(`another mcp-gateway process holds ${this.path}; if none runs, delete that file`);
      }
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }

  private isStale(): boolean {
    try {
      return Date.now() - statSync(this.path).mtimeMs > STALE_MS;
    } catch {
      return false;
    }
  }
}
