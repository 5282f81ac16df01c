/**
 * The change feed on Redis (events.ts): PUBLISH on the store's own connection, and a second
 * connection (the first subscribe opens it) in subscriber mode, since a connection that
 * subscribes can send nothing else.
 *
 * Classic pub/sub, not sharded (SPUBLISH/SSUBSCRIBE): the feed is one low-volume channel, which
 * sharding would put on one shard anyway; classic PUBLISH reaches subscribers on every node of
 * a Cluster (ioredis subscribes through one node and moves to another when it fails) and works
 * on Redis 6.2, which sharded pub/sub (Redis 7) does not.
 *
 * A lost subscription: Redis delivers nothing published while a subscriber is away. On
 * standalone and Sentinel, the subscriber reconnects on its own (to the new master after a
 * failover); each time it is back this feed subscribes again and, once Redis confirms, tells
 * every listener to resync. The cluster client resubscribes on its own when its node changes
 * and is resynced here only when the whole cluster connection was lost: a change published
 * while it moves from one node to another takes effect when cached entries expire.
 */
import { Cluster, type Redis } from "ioredis";
import {
  type ChangeFeed,
  type ChangeFeedStats,
  type ChangeListener,
  ChangeListeners,
  decodeChange,
  encodeChange,
} from "./events.js";
import { type RedisClient, unavailableError } from "./redis-client.js";

export class RedisChangeFeed implements ChangeFeed {
  private readonly listeners = new ChangeListeners();
  private subscriber?: RedisClient;
  private started?: Promise<void>;
  private listening = false;
  private closed = false;

  constructor(
    private readonly client: RedisClient,
    /** The channel, `{key_prefix}changes`. */
    private readonly channel: string,
    /** Connection errors of the subscriber (it keeps reconnecting meanwhile). */
    private readonly onError?: (err: Error) => void,
    /** How long the first subscription may take before subscribe() fails. */
    private readonly timeoutMs = 5_000,
  ) {}

  async publish(topic: string, body: string): Promise<void> {
    try {
      await this.publisher().publish(this.channel, encodeChange(topic, body));
    } catch (err) {
      throw unavailableError(err);
    }
  }

  async subscribe(topic: string, listener: ChangeListener): Promise<() => void> {
    const remove = this.listeners.add(topic, listener);
    try {
      this.started ??= this.start();
      await this.started;
    } catch (err) {
      remove();
      this.started = undefined;
      throw err;
    }
    return remove;
  }

  /**
   * Where changes are published. On a Cluster, one master, the same for every instance that sees
   * the same masters: a keyless PUBLISH would otherwise go to any node, and two changes sent
   * through two nodes reach a subscriber over two cluster-bus links, in either order. Through
   * one node they arrive in the order sent.
   */
  private publisher(): RedisClient {
    if (!(this.client instanceof Cluster)) return this.client;
    let chosen: Redis | undefined;
    let chosenKey = "";
    for (const node of this.client.nodes("master")) {
      const key = `${node.options.host}:${node.options.port}`;
      if (!chosen || key < chosenKey) {
        chosen = node;
        chosenKey = key;
      }
    }
    return chosen ?? this.client;
  }

  /** Nothing to fetch: Redis pushes each change to the subscriber as it is published. */
  catchUp(): void {}

  stats(): ChangeFeedStats {
    const { received, resyncs } = this.listeners;
    return { received, resyncs, listening: this.listening };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listening = false;
    this.subscriber?.disconnect();
  }

  /** Opens the subscriber connection; resolves once the channel is subscribed the first time. */
  private start(): Promise<void> {
    // Same server, credentials, TLS and reconnect policy as the store's connection. Our own
    // resubscription (below) replaces ioredis's, so that a resync follows Redis's confirmation.
    const sub: RedisClient =
      this.client instanceof Cluster
        ? this.client.duplicate([], { enableAutoPipelining: false })
        : (this.client as Redis).duplicate({ enableAutoPipelining: false, autoResubscribe: false });
    this.subscriber = sub;
    let subscribedBefore = false;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        sub.disconnect();
        reject(unavailableError(new Error(`subscribing to ${this.channel} timed out`)));
      }, this.timeoutMs);
      const subscribe = async () => {
        try {
          await sub.subscribe(this.channel);
        } catch (err) {
          this.onError?.(err as Error);
          // Reconnect, and try again when ready: never stay connected but deaf.
          if (!this.closed) sub.disconnect(true);
          return;
        }
        this.listening = true;
        if (subscribedBefore) {
          this.listeners.resync();
        } else {
          subscribedBefore = true;
          clearTimeout(timer);
          resolve();
        }
      };
      sub.on("ready", () => void subscribe());
      sub.on("close", () => {
        this.listening = false;
      });
      sub.on("error", (err: Error) => this.onError?.(err));
      sub.on("message", (channel: string, text: string) => {
        if (channel !== this.channel) return;
        const change = decodeChange(text);
        if (change) this.listeners.deliver(change[0], change[1]);
      });
      // Lazy like the store's connection: connect now; "ready" subscribes.
      sub.connect().catch(() => undefined);
    });
  }
}
