/**
 * The shared store for many gateway instances: Redis (or Valkey) through ioredis, standalone,
 * Sentinel or Cluster.
 *
 * Key layout: `{key_prefix}{ns}:{key}` (default prefix `mcpgw:`), value = the JSON text, expiry
 * = a native Redis TTL (PX), so expired state disappears on its own. Atomic operations map to
 * single commands: take = GETDEL, putIfAbsent = SET NX, incr = a 3-line Lua script (INCR, and
 * PEXPIRE when the counter has no TTL yet); the refresh rotation is one Lua script over the
 * keys of one grant (redis-rotation.ts).
 *
 * Changes other instances must hear of go through {@link RedisChangeFeed} (redis-events.ts).
 *
 * Owner indexes are one sorted set per owner, `{key_prefix}index:{owner}`, each member scored
 * with its expiry (epoch ms, +inf for none): listing reads the live score range, adding prunes
 * the expired ones and keeps the set itself as long as its longest-lived member.
 *
 * A server that cannot answer (unreachable, timing out, loading, failing over) makes every
 * operation throw {@link StoreUnavailableError} quickly (redis-client.ts sets how quickly).
 */
import calculateSlot from "cluster-key-slot";
import type { Cluster, Redis } from "ioredis";
import { StoreUnavailableError } from "./errors.js";
import {
  connectRedis,
  describeRedis,
  type RedisClient,
  type RedisStoreOptions,
  unavailableError,
} from "./redis-client.js";
import { RedisChangeFeed } from "./redis-events.js";
import {
  CONFIRM_ROTATION_LUA,
  CONFIRM_ROTATIONS_LUA,
  parseRefreshStepReply,
  parseRotateReply,
  REFRESH_STEP_LUA,
  ROTATE_REFRESH_LUA,
  refreshStepArgs,
  rotateRefreshArgs,
} from "./redis-rotation.js";
import {
  FAMILY_NS,
  familyKey,
  NEXT_NS,
  nextKey,
  type RefreshRotation,
  type RefreshStep,
  type RefreshStepOutcome,
  ROTATED_NS,
  type RotationOutcome,
  rotatedKey,
} from "./refresh-rotation.js";
import type { Entry, Json, Store } from "./store.js";
import { assertNamespace, assertOwner, INDEX_NAMESPACE, ttlToMillis } from "./validate.js";

export type { RedisStoreOptions } from "./redis-client.js";

/** INCR, then set the expiry if the counter has none (first increment, or created by INCR). */
const INCR_WITH_EXPIRY = `
local n = redis.call('INCR', KEYS[1])
if tonumber(ARGV[1]) > 0 and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n`;

/** INCR_WITH_EXPIRY over every key: KEYS the counters, ARGV their TTLs (ms, '0' = none). */
const INCR_MANY = `
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('INCR', key)
  if tonumber(ARGV[i]) > 0 and redis.call('PTTL', key) == -1 then
    redis.call('PEXPIRE', key, ARGV[i])
  end
end
return counts`;

/**
 * Adds one member to an owner's set, drops expired members, and lets the set expire with its
 * last member. KEYS: the set. ARGV: member, its score (expiry, epoch ms, or '+inf'), now (ms).
 * The set's own TTL is taken relative to `now`, the gateway's clock that scored the members,
 * so a clock difference between gateway and Redis cannot expire it early.
 */
const INDEX_ADD = `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]
if last == nil then return 0 end
if last == 'inf' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(tonumber(last) - tonumber(ARGV[3]))))
end
return 0`;

/**
 * How long confirmations of rotations wait to be sent together (redis-rotation.ts): under load
 * one command confirms many rotations, or, sooner, the next rotation carries them in its own
 * script. Nothing waits for a confirmation (see rotateRefresh).
 */
const CONFIRM_BATCH_MS = 2;

/** Keys fetched per SCAN step. */
const SCAN_COUNT = 500;
/** Keys per DEL of deleteMany: one command stays a short stop for the server. */
const DEL_CHUNK = 500;

/** `keys` in groups of at most `size`. */
function chunked(keys: string[], size: number): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < keys.length; i += size) out.push(keys.slice(i, i + size));
  return out;
}

type WithScripts = {
  mcpgwIncr(key: string, ttlMs: number): Promise<number>;
  /** numberOfKeys first, then the keys, then one TTL (ms) per key. */
  mcpgwIncrMany(numberOfKeys: number, ...keysThenTtls: Array<string | number>): Promise<number[]>;
  mcpgwIndexAdd(key: string, member: string, score: string, now: string): Promise<unknown>;
  mcpgwRotateRefresh(
    family: string,
    next: string,
    rotated: string,
    alongside: string,
    ...args: string[]
  ): Promise<unknown>;
  /**
   * The same script with confirmations riding along: numberOfKeys, the four keys and the
   * confirmations' keys, then the arguments (redis-rotation.ts). Not on Cluster, where
   * auto-pipelining routes a command by its first argument, here a number.
   */
  mcpgwRotateConfirming(numberOfKeys: number, ...keysThenArgs: string[]): Promise<unknown>;
  mcpgwConfirmRotation(next: string, presented: string, graceMs: string): Promise<unknown>;
  /** numberOfKeys, the sealed successors' keys, the grace (ms), each one's presented hash. */
  mcpgwConfirmRotations(numberOfKeys: number, ...args: string[]): Promise<unknown>;
  /** numberOfKeys, the five keys and the confirmations' keys, then the arguments (redis-rotation.ts). */
  mcpgwRefreshStep(numberOfKeys: number, ...keysThenArgs: string[]): Promise<unknown>;
};

/** Escapes Redis glob metacharacters so a prefix matches literally in SCAN MATCH. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

function parse<T>(text: string | null | undefined): T | undefined {
  return text === null || text === undefined ? undefined : (JSON.parse(text) as T);
}

/** Redis-backed {@link Store}. Create with {@link RedisStore.connect}. */
export class RedisStore implements Store {
  readonly kind = "redis";
  readonly location: string;
  /** Changes published to every instance (events.ts): channel `{key_prefix}changes`. */
  readonly changes: RedisChangeFeed;
  private readonly prefix: string;
  private readonly waitReplicas: number;
  private readonly waitMs: number;
  private closed = false;
  /** Not on Cluster, where a grant and its family sit in different slots. */
  readonly refreshInOneStep?: (step: RefreshStep) => Promise<RefreshStepOutcome>;
  /** Rotations answered and not yet confirmed, by grace window (ms): sealed successor key -> presented. */
  private unconfirmed = new Map<string, Map<string, string>>();
  private confirmTimer: NodeJS.Timeout | undefined;
  private readonly cluster: boolean;
  /** GETs waiting for the end of this microtask turn (read). */
  private pendingReads:
    | {
        keys: string[];
        waiters: Array<{ resolve: (text: string | null) => void; reject: (err: unknown) => void }>;
      }
    | undefined;

  private constructor(
    private readonly client: RedisClient,
    opts: RedisStoreOptions,
  ) {
    this.location = describeRedis(opts);
    this.cluster = "nodes" in client && typeof (client as Cluster).nodes === "function";
    this.prefix = opts.key_prefix ?? "mcpgw:";
    this.waitReplicas = opts.wait_replicas ?? 0;
    this.waitMs = (opts.wait_timeout ?? 1) * 1000;
    this.changes = new RedisChangeFeed(
      client,
      `${this.prefix}changes`,
      opts.onError,
      opts.connect_timeout_ms ?? 5_000,
    );
    client.defineCommand("mcpgwIncr", { numberOfKeys: 1, lua: INCR_WITH_EXPIRY });
    client.defineCommand("mcpgwIncrMany", { lua: INCR_MANY });
    client.defineCommand("mcpgwIndexAdd", { numberOfKeys: 1, lua: INDEX_ADD });
    client.defineCommand("mcpgwRotateRefresh", { numberOfKeys: 4, lua: ROTATE_REFRESH_LUA });
    client.defineCommand("mcpgwRotateConfirming", { lua: ROTATE_REFRESH_LUA });
    client.defineCommand("mcpgwConfirmRotation", { numberOfKeys: 1, lua: CONFIRM_ROTATION_LUA });
    client.defineCommand("mcpgwConfirmRotations", { lua: CONFIRM_ROTATIONS_LUA });
    client.defineCommand("mcpgwRefreshStep", { lua: REFRESH_STEP_LUA });
    if (!this.cluster) this.refreshInOneStep = (step) => this.refreshStep(step);
  }

  /**
   * Connects and checks the server (reachable, authenticated, Redis >= 6.2). Fails with one
   * readable line instead of retrying forever; reconnects on its own once running.
   */
  static async connect(opts: RedisStoreOptions): Promise<RedisStore> {
    return new RedisStore(await connectRedis(opts), opts);
  }

  private k(ns: string, key: string): string {
    assertNamespace(ns);
    return `${this.prefix}${ns}:${key}`;
  }

  /** The sorted set of one owner's index. */
  private indexKey(owner: string): string {
    assertOwner(owner);
    return `${this.prefix}${INDEX_NAMESPACE}:${owner}`;
  }

  private get scripts(): WithScripts {
    return this.redis as unknown as WithScripts;
  }

  /** Awaits one client call, turning "Redis cannot answer" into StoreUnavailableError. */
  private async call<T>(reply: Promise<T>): Promise<T> {
    try {
      return await reply;
    } catch (err) {
      throw unavailableError(err);
    }
  }

  /**
   * A write, acknowledged only once `wait_replicas` replicas hold it. WAIT is queued right
   * behind the write on the same connection (commands keep their order), so it counts that
   * write; a write the replicas did not confirm in time is a 503 and the client retries, which
   * every write here tolerates (a retried registration is a second client, a retried rotation
   * is answered from the grace window).
   */
  private async write<T>(reply: Promise<T>, wrote: (result: T) => boolean = () => true): Promise<T> {
    if (this.waitReplicas === 0) return this.call(reply);
    const acks = (this.client as Redis).wait(this.waitReplicas, this.waitMs);
    const [result, replicas] = await this.call(Promise.all([reply, acks]));
    // `wrote`: whether this result is a write to hold to the replicas (a script may not write).
    if (replicas < this.waitReplicas && wrote(result))
      throw new StoreUnavailableError(
        `only ${replicas} of ${this.waitReplicas} Redis replicas confirmed a write within ${this.waitMs} ms`,
        { retryAfterSeconds: 1 },
      );
    return result;
  }

  private get isCluster(): boolean {
    return this.cluster;
  }

  async get<T extends Json>(ns: string, key: string): Promise<T | undefined> {
    return parse<T>(await this.call(this.read(this.k(ns, key))));
  }

  /**
   * A GET that waits for the rest of this turn of the microtask queue: the GETs asked for in one
   * turn go out as one MGET (a refresh reads its family, its grant and the grant's revocation
   * mark from three modules at once: one command instead of three, for the gateway and for
   * Redis). Not on Cluster, where the keys may sit in different slots. Any other command sends
   * the waiting reads first ({@link redis}), so commands keep the order they were asked in.
   */
  private read(full: string): Promise<string | null> {
    if (this.cluster) return this.client.get(full);
    let batch = this.pendingReads;
    if (!batch) {
      batch = { keys: [], waiters: [] };
      this.pendingReads = batch;
      queueMicrotask(() => this.sendReads());
    }
    const { keys, waiters } = batch;
    return new Promise((resolve, reject) => {
      keys.push(full);
      waiters.push({ resolve, reject });
    });
  }

  private sendReads(): void {
    const batch = this.pendingReads;
    if (!batch) return;
    this.pendingReads = undefined;
    const { keys, waiters } = batch;
    const replies: Promise<Array<string | null>> =
      keys.length === 1 ? this.client.get(keys[0] as string).then((text) => [text]) : this.client.mget(keys);
    replies.then(
      (texts) => {
        for (const [i, w] of waiters.entries()) w.resolve(texts[i] ?? null);
      },
      (err: unknown) => {
        for (const w of waiters) w.reject(err);
      },
    );
  }

  /** The client, for any command but a coalesced GET: the reads waiting to go out go first. */
  private get redis(): RedisClient {
    if (this.pendingReads) this.sendReads();
    return this.client;
  }

  async getMany<T extends Json>(ns: string, keys: string[]): Promise<Array<T | undefined>> {
    if (keys.length === 0) return [];
    const full = keys.map((key) => this.k(ns, key));
    // On Cluster the keys may live in different slots, where MGET fails (CROSSSLOT); single
    // GETs are batched per node by auto-pipelining instead.
    const texts = this.isCluster
      ? await this.call(Promise.all(full.map((key) => this.redis.get(key))))
      : await this.call(this.redis.mget(full));
    return texts.map((text) => parse<T>(text));
  }

  async put(ns: string, key: string, value: Json, ttlSeconds?: number): Promise<void> {
    const full = this.k(ns, key);
    const ms = ttlToMillis(ttlSeconds);
    const text = JSON.stringify(value);
    await this.write(ms === undefined ? this.redis.set(full, text) : this.redis.set(full, text, "PX", ms));
  }

  async putIfAbsent(ns: string, key: string, value: Json, ttlSeconds?: number): Promise<boolean> {
    const full = this.k(ns, key);
    const ms = ttlToMillis(ttlSeconds);
    const text = JSON.stringify(value);
    const reply = await this.write(
      ms === undefined ? this.redis.set(full, text, "NX") : this.redis.set(full, text, "PX", ms, "NX"),
    );
    return reply === "OK";
  }

  // Not waited for: a take consumes a single-use value (a code, a pending request) that the caller
  // now holds; failing it would burn the value, and a deletion lost in a failover leaves a value
  // that still needs its PKCE verifier or session and expires within minutes.
  async take<T extends Json>(ns: string, key: string): Promise<T | undefined> {
    return parse<T>(await this.call(this.redis.getdel(this.k(ns, key))));
  }

  async delete(ns: string, key: string): Promise<boolean> {
    return (await this.write(this.redis.del(this.k(ns, key)))) > 0;
  }

  /**
   * One multi-key DEL per chunk, sent at once (one round trip for an owner's few hundred keys).
   * On Cluster a DEL must not name keys of two slots (CROSSSLOT): keys are grouped by slot first,
   * and the client routes each group's DEL to its master.
   */
  async deleteMany(ns: string, keys: string[]): Promise<number> {
    const full = [...new Set(keys.map((key) => this.k(ns, key)))];
    if (full.length === 0) return 0;
    let groups: string[][];
    if (this.isCluster) {
      const bySlot = new Map<number, string[]>();
      for (const key of full) {
        const slot = calculateSlot(key);
        const group = bySlot.get(slot);
        if (group) group.push(key);
        else bySlot.set(slot, [key]);
      }
      groups = [...bySlot.values()].flatMap((group) => chunked(group, DEL_CHUNK));
    } else {
      groups = chunked(full, DEL_CHUNK);
    }
    const counts = await Promise.all(groups.map((group) => this.write(this.redis.del(...group))));
    return counts.reduce((sum, n) => sum + n, 0);
  }

  /**
   * The write, then the publish: Redis cannot make the two one step here (on Cluster the change
   * goes through a master of its own, redis-events.ts). A PUBLISH is fire-and-forget anyway (a
   * subscriber that is away misses it), so one that fails after the write is let go like one
   * nobody heard: the entry stands, and readers that cache it see it when their copy expires.
   */
  async putAndPublish(
    ns: string,
    key: string,
    value: Json,
    ttlSeconds: number | undefined,
    topic: string,
  ): Promise<void> {
    await this.put(ns, key, value, ttlSeconds);
    await this.changes.publish(topic, key).catch(() => {});
  }

  async list<T extends Json>(ns: string, prefix = ""): Promise<Array<Entry<T>>> {
    const head = this.k(ns, "");
    const pattern = `${globEscape(head)}${globEscape(prefix)}*`;
    const nodes: Redis[] = this.isCluster ? (this.client as Cluster).nodes("master") : [this.client as Redis];
    const keys = new Set<string>();
    for (const node of nodes) {
      let cursor = "0";
      do {
        const [next, batch] = await this.call(node.scan(cursor, "MATCH", pattern, "COUNT", SCAN_COUNT));
        for (const key of batch) keys.add(key);
        cursor = next;
      } while (cursor !== "0");
    }
    const sorted = [...keys].sort();
    // Values and TTLs in one pipelined batch; a key that expired since SCAN is skipped.
    const rows = await this.call(
      Promise.all(
        sorted.map(async (full) => {
          const [text, pttl] = await Promise.all([this.redis.get(full), this.redis.pttl(full)]);
          return { full, text, pttl };
        }),
      ),
    );
    const now = Date.now();
    const entries: Array<Entry<T>> = [];
    for (const { full, text, pttl } of rows) {
      if (text === null || pttl === -2) continue;
      const entry: Entry<T> = { key: full.slice(head.length), value: JSON.parse(text) as T };
      if (pttl > 0) entry.expiresAt = now + pttl;
      entries.push(entry);
    }
    return entries;
  }

  async indexAdd(owner: string, member: string, ttlSeconds?: number): Promise<void> {
    const key = this.indexKey(owner);
    const ms = ttlToMillis(ttlSeconds);
    const now = Date.now();
    const score = ms === undefined ? "+inf" : String(now + ms);
    // Waited for like any write: the member must outlast a failover as its entry does.
    await this.write(this.scripts.mcpgwIndexAdd(key, member, score, String(now)));
  }

  async indexMembers(owner: string): Promise<string[]> {
    return this.call(this.redis.zrangebyscore(this.indexKey(owner), `(${Date.now()}`, "+inf"));
  }

  async indexRemove(owner: string, members: string[]): Promise<void> {
    const key = this.indexKey(owner);
    if (members.length) await this.call(this.redis.zrem(key, ...members));
  }

  // Not waited for: counters are abuse brakes, and a count lost in a failover costs nothing.
  async incr(ns: string, key: string, ttlSeconds: number): Promise<number> {
    const ms = ttlToMillis(ttlSeconds) ?? 0;
    return Number(await this.call(this.scripts.mcpgwIncr(this.k(ns, key), ms)));
  }

  // One script over every key (the /token brake counts address and client in one command); on
  // Cluster the keys may sit in different slots, so each is its own script call there.
  async incrMany(ns: string, counters: Array<{ key: string; ttlSeconds: number }>): Promise<number[]> {
    if (counters.length === 0) return [];
    if (this.isCluster || counters.length === 1)
      return Promise.all(counters.map(({ key, ttlSeconds }) => this.incr(ns, key, ttlSeconds)));
    const keys = counters.map(({ key }) => this.k(ns, key));
    const ttls = counters.map(({ ttlSeconds }) => ttlToMillis(ttlSeconds) ?? 0);
    const counts = await this.call(this.scripts.mcpgwIncrMany(keys.length, ...keys, ...ttls));
    return counts.map(Number);
  }

  async ping(): Promise<void> {
    await this.call(this.redis.ping());
  }

  async rotateRefresh(rotation: RefreshRotation): Promise<RotationOutcome> {
    const family = this.k(FAMILY_NS, familyKey(rotation.sid));
    const next = this.k(NEXT_NS, nextKey(rotation.sid));
    // The entry written alongside goes into the script (one round trip) wherever its key may:
    // everywhere but on Cluster, where it sits in another slot than the family's. There it is
    // written once the script has handed a token out, and before the rotation is confirmed:
    // if that write fails the caller answers 503, and the client's retry with the predecessor,
    // however late, is answered with the same successor (unconfirmed) and writes it again.
    const inScript = this.isCluster ? undefined : rotation.alongside;
    const keys = [
      family,
      next,
      this.k(ROTATED_NS, rotatedKey(rotation.sid, rotation.presented)),
      inScript ? this.k(inScript.ns, inScript.key) : family,
    ] as const;
    const args = rotateRefreshArgs(rotation, Date.now(), inScript);
    const reply = await this.write(
      this.isCluster || this.unconfirmed.size === 0
        ? this.scripts.mcpgwRotateRefresh(...keys, ...args)
        : this.rotateConfirming([...keys], args),
    );
    const outcome = parseRotateReply(reply);
    const after = rotation.alongside;
    if (after && !inScript && (outcome.outcome === "rotated" || outcome.outcome === "replayed")) {
      await this.put(after.ns, after.key, after.value, after.ttlSeconds);
    }
    const graceMs = ttlToMillis(rotation.graceSeconds);
    if (outcome.outcome === "rotated" && graceMs !== undefined) {
      // The reply is here: the window is the grace window from now (redis-rotation.ts). If this
      // fails, the rotation stands and the successor stays answerable until it is used. Not
      // waited for, and sent a moment later with others: the answer does not depend on it, and
      // a confirmation that arrives after the successor was itself rotated finds another `for`
      // and changes nothing.
      this.confirmSoon(next, rotation.presented, graceMs);
    }
    return outcome;
  }

  /** A whole plain refresh in one script (REFRESH_STEP_LUA), carrying the confirmations waiting. */
  private async refreshStep(step: RefreshStep): Promise<RefreshStepOutcome> {
    const next = this.k(NEXT_NS, nextKey(step.sid));
    const keys = [
      this.k(FAMILY_NS, familyKey(step.sid)),
      next,
      this.k(ROTATED_NS, rotatedKey(step.sid, step.presented)),
      this.k(step.grant.ns, step.grant.key),
      this.k(step.revocation.ns, step.revocation.key),
      ...(step.brakes?.counters ?? []).map((c) => this.k(step.brakes?.ns as string, c.key)),
    ];
    const args = refreshStepArgs(step, Date.now());
    const taken = this.takeConfirmations(keys, args);
    let reply: unknown;
    try {
      // Held to the replicas only when it rotated: a brake count is not (incr), nor a read.
      reply = await this.write(
        this.scripts.mcpgwRefreshStep(keys.length, ...keys, ...args),
        (result) => parseRefreshStepReply(result).outcome === "rotated",
      );
    } catch (err) {
      this.restoreConfirmations(taken);
      throw err;
    }
    const outcome = parseRefreshStepReply(reply);
    const graceMs = ttlToMillis(step.graceSeconds);
    // As for rotateRefresh: the reply is here, the window runs from now.
    if (outcome.outcome === "rotated" && graceMs !== undefined)
      this.confirmSoon(next, step.presented, graceMs);
    return outcome;
  }

  /**
   * The rotation script carrying the confirmations waiting to go out (not on Cluster, where
   * their keys sit in other slots): one command and one write fewer than the batch would be.
   */
  private rotateConfirming(keys: string[], args: string[]): Promise<unknown> {
    const taken = this.takeConfirmations(keys, args);
    return this.scripts.mcpgwRotateConfirming(keys.length, ...keys, ...args).catch((err: unknown) => {
      this.restoreConfirmations(taken);
      throw err;
    });
  }

  /**
   * Moves the confirmations waiting to go out onto a script's keys and arguments; returns them,
   * for restoreConfirmations if that script fails.
   */
  private takeConfirmations(keys: string[], args: string[]): Map<string, Map<string, string>> {
    const taken = this.unconfirmed;
    if (taken.size === 0) return taken;
    for (const [grace, batch] of taken) {
      for (const [successor, presented] of batch) {
        keys.push(successor);
        args.push(presented, grace);
      }
    }
    this.unconfirmed = new Map();
    clearTimeout(this.confirmTimer);
    this.confirmTimer = undefined;
    return taken;
  }

  /**
   * Confirmations a failed script carried go out again (with the next script, or on their own):
   * harmless if that script did run them, as each changes only a successor still recorded for
   * the token it names; lost, their successors would stay answerable for the family's lifetime.
   */
  private restoreConfirmations(taken: Map<string, Map<string, string>>): void {
    for (const [grace, batch] of taken)
      for (const [successor, presented] of batch) {
        // A rotation of the same family since then has its own, newer confirmation waiting.
        if (!this.unconfirmed.get(grace)?.has(successor))
          this.confirmSoon(successor, presented, Number(grace));
      }
  }

  private confirmSoon(next: string, presented: string, graceMs: number): void {
    let batch = this.unconfirmed.get(String(graceMs));
    if (!batch) {
      batch = new Map();
      this.unconfirmed.set(String(graceMs), batch);
    }
    batch.set(next, presented);
    this.confirmTimer ??= setTimeout(() => this.sendConfirmations(), CONFIRM_BATCH_MS);
  }

  private sendConfirmations(): void {
    this.confirmTimer = undefined;
    const pending = this.unconfirmed;
    this.unconfirmed = new Map();
    for (const [grace, batch] of pending) {
      // On Cluster the keys sit in different slots: one script per key there.
      if (this.isCluster || batch.size === 1) {
        for (const [next, presented] of batch)
          void this.scripts.mcpgwConfirmRotation(next, presented, grace).catch(() => {});
        continue;
      }
      void this.scripts
        .mcpgwConfirmRotations(batch.size, ...batch.keys(), grace, ...batch.values())
        .catch(() => {});
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Confirmations still waiting go out ahead of QUIT (the connection keeps their order).
    if (this.confirmTimer) {
      clearTimeout(this.confirmTimer);
      this.sendConfirmations();
    }
    await this.changes.close();
    try {
      await this.redis.quit();
    } catch {
      // Already disconnected: nothing to flush.
      this.client.disconnect();
    }
  }
}
