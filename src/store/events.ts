/**
 * The change feed: how one gateway instance tells every other instance on the same store that
 * something they may hold in memory changed (a revocation, a new signing key), so that each
 * drops just that from its caches instead of waiting for them to expire.
 *
 *   Redis    PUBLISH on one channel, `{key_prefix}changes`, heard by a second connection in
 *            subscriber mode (redis-events.ts); standalone, Sentinel and Cluster alike.
 *   SQLite   a `changes` table in the same file: publishing inserts a row, and each process
 *            that listens reads the rows after the last one it saw, every 250 ms
 *            (sqlite-events.ts). This covers several processes on one file (`serve` and the
 *            admin CLI, or two `serve`s) without anything but the file.
 *
 * The feed only hastens what the caches' own lifetimes already bound: a change that is missed
 * (the subscription was down, the publish failed) still takes effect when the cached entry
 * expires. When a listener may have missed changes (a lost subscription that is back), it is
 * told to `resync`: to forget what those changes could have touched.
 */

/** What a subscriber does with changes on one topic. */
export interface ChangeListener {
  /** One change; `body` is what the publisher sent (a revocation mark, a key id). */
  change(body: string): void;
  /** Changes may have been missed: forget everything they could have changed. */
  resync(): void;
}

/** Figures for /metrics. */
export interface ChangeFeedStats {
  /** Changes received and handed to listeners. */
  received: number;
  /** Times listeners were told to resync (a subscription lost and re-established). */
  resyncs: number;
  /** Whether the feed is listening right now (false also when nothing subscribed). */
  listening: boolean;
}

export interface ChangeFeed {
  /**
   * Tells every instance listening on this store, this one included. Throws
   * StoreUnavailableError when the store cannot take it; the change itself (already written
   * by the caller) stands, and other instances see it when their cached entries expire.
   */
  publish(topic: string, body: string): Promise<void>;
  /** Starts hearing `topic`; resolves once listening, to a function that stops it. */
  subscribe(topic: string, listener: ChangeListener): Promise<() => void>;
  /**
   * Delivers now what was already published and not yet heard, where that is cheap and
   * local: SQLite reads its table at once instead of at the next poll; on Redis changes are
   * pushed as they are published, so there is nothing to fetch. For a caller that has reason
   * to think it is behind (a token signed by a key it does not know).
   */
  catchUp(): void;
  stats(): ChangeFeedStats;
}

/** The wire form of one change: a JSON pair, the same on both engines. */
export function encodeChange(topic: string, body: string): string {
  return JSON.stringify([topic, body]);
}

export function decodeChange(text: string): [string, string] | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    if (Array.isArray(parsed) && typeof parsed[0] === "string" && typeof parsed[1] === "string")
      return [parsed[0], parsed[1]];
  } catch {
    // Not ours (someone else publishing on the channel): ignored.
  }
  return undefined;
}

/** Listeners by topic, and the counters both engines report. */
export class ChangeListeners {
  received = 0;
  resyncs = 0;
  private readonly byTopic = new Map<string, Set<ChangeListener>>();

  get empty(): boolean {
    return this.byTopic.size === 0;
  }

  add(topic: string, listener: ChangeListener): () => void {
    let set = this.byTopic.get(topic);
    if (!set) {
      set = new Set();
      this.byTopic.set(topic, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.byTopic.get(topic) === set) this.byTopic.delete(topic);
    };
  }

  deliver(topic: string, body: string): void {
    const set = this.byTopic.get(topic);
    if (!set) return;
    this.received++;
    for (const listener of set) listener.change(body);
  }

  resync(): void {
    this.resyncs++;
    for (const set of this.byTopic.values()) for (const listener of set) listener.resync();
  }
}
