/**
 * Abuse brakes: fixed-window counters kept in the store, so every gateway instance counts
 * into the same numbers (Store.incr is atomic on both engines). One counter per rule, subject
 * and window:
 *
 *   rate  {rule}:{window start, epoch s}:{subject}  count  TTL: until the window ends
 *
 * A window starts at a multiple of its length, so the time left in it (Retry-After) follows
 * from the clock without asking the store, and every instance agrees on it. The price of fixed
 * windows is that up to twice `max` can pass around a window boundary, which is fine for a
 * brake: it bounds abuse, it does not meter use.
 *
 * Why not @fastify/rate-limit (or rate-limiter-flexible): one request here passes several
 * counts (address and client, address and user name) and the plugin runs one limiter per
 * request; the login brake counts failures only, decided after the password check, and
 * answers with the login form again; the counters must live in our Store (its Redis prefix,
 * Sentinel/Cluster, its outage error that becomes a 503), which either library would reach
 * through an adapter as large as this module.
 */
import { createHash } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";
import type { Store } from "../store/store.js";
import type { Audit } from "./audit.js";

export const RATE_NAMESPACE = "rate";

/** At most `max` counted events per subject in each `window` (seconds). */
export interface Limit {
  max: number;
  window: number;
}

/** Who a count is about, as the audit event names it. */
export type Subject = { address: string } | { user: string } | { client_id: string };

/** One count to take: the rule (e.g. `token.per_client`), who it is about, and its limit. */
export interface Brake {
  rule: string;
  subject: Subject;
  limit: Limit;
}

/** A count planned but not taken yet (RateLimiter.plan). */
export interface PlannedCount {
  /** Keys in RATE_NAMESPACE, each with its TTL and the most it may reach. */
  counters: Array<{ key: string; ttlSeconds: number; max: number }>;
  /** What take() would answer for these counts, in counters' order (auditing a brake that trips). */
  verdict(counts: number[]): Refusal | undefined;
}

/** A brake that refused: which, and in how many seconds its window ends. */
export interface Refusal {
  rule: string;
  retryAfter: number;
}

/** Values longer than this are counted under their hash: bounded keys whatever a client sends. */
const MAX_SUBJECT_LENGTH = 64;

export class RateLimiter {
  constructor(
    private readonly store: Store,
    private readonly audit: Audit,
    /** `rate_limits.enabled`: off, nothing is counted or refused. */
    private readonly enabled = true,
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * Counts this request on every brake. Refuses when any count went past its max; the request
   * that first goes past is the one the audit records (once per window, whichever instance).
   */
  async take(brakes: Brake[]): Promise<Refusal | undefined> {
    const count = this.plan(brakes);
    return count ? this.takePlanned(count) : undefined;
  }

  /** Takes a planned count in a store operation of its own. */
  async takePlanned(count: PlannedCount): Promise<Refusal | undefined> {
    return count.verdict(await this.store.incrMany(RATE_NAMESPACE, count.counters));
  }

  /**
   * {@link take} in two halves, for a store step that increments the counters itself (the
   * refresh step on Redis): the counters (in RATE_NAMESPACE) with their TTLs and maxes, and the
   * verdict on the counts that step returns. Undefined when nothing is counted.
   */
  plan(brakes: Brake[]): PlannedCount | undefined {
    if (!this.enabled || brakes.length === 0) return undefined;
    const now = this.clock();
    return {
      counters: brakes.map((b) => ({ key: key(b, now), ttlSeconds: ttl(b, now), max: b.limit.max })),
      verdict: (counts) => {
        let refusal: Refusal | undefined;
        brakes.forEach((brake, i) => {
          const count = Number(counts[i] ?? 0);
          if (count === brake.limit.max + 1) this.tripped(brake, now);
          if (count > brake.limit.max) refusal ??= { rule: brake.rule, retryAfter: retryAfter(brake, now) };
        });
        return refusal;
      },
    };
  }

  /** The refusal of the first brake already at its max, counting nothing (the login brake's check). */
  async blocked(brakes: Brake[]): Promise<Refusal | undefined> {
    if (!this.enabled || brakes.length === 0) return undefined;
    const now = this.clock();
    const counts = await this.store.getMany<number>(
      RATE_NAMESPACE,
      brakes.map((b) => key(b, now)),
    );
    const index = brakes.findIndex((b, i) => Number(counts[i] ?? 0) >= b.limit.max);
    const brake = brakes[index];
    return brake ? { rule: brake.rule, retryAfter: retryAfter(brake, now) } : undefined;
  }

  /**
   * Counts an event that already happened (a failed login) on every brake; the one that brings a
   * count to its max closes that brake, and is what the audit records.
   */
  async record(brakes: Brake[]): Promise<void> {
    if (!this.enabled || brakes.length === 0) return;
    const now = this.clock();
    const counts = await this.count(brakes, now);
    brakes.forEach((brake, i) => {
      if (counts[i] === brake.limit.max) this.tripped(brake, now);
    });
  }

  /** Every brake's counter, incremented in one store operation. */
  private count(brakes: Brake[], now: number): Promise<number[]> {
    return this.store.incrMany(
      RATE_NAMESPACE,
      brakes.map((b) => ({ key: key(b, now), ttlSeconds: ttl(b, now) })),
    );
  }

  private tripped(brake: Brake, now: number): void {
    this.audit.emit({
      type: "rate.limited",
      rule: brake.rule,
      ...brake.subject,
      retry_after: retryAfter(brake, now),
    });
  }
}

function windowStart(limit: Limit, now: number): number {
  const ms = limit.window * 1000;
  return Math.floor(now / ms) * ms;
}

function key(brake: Brake, now: number): string {
  const start = windowStart(brake.limit, now) / 1000;
  return `${brake.rule}:${start}:${bounded(Object.values(brake.subject)[0] as string)}`;
}

/** Seconds until the window ends: the counter's TTL and the answer's Retry-After. */
function retryAfter(brake: Brake, now: number): number {
  const end = windowStart(brake.limit, now) + brake.limit.window * 1000;
  return Math.max(1, Math.ceil((end - now) / 1000));
}

const ttl = retryAfter;

function bounded(value: string): string {
  if (value.length <= MAX_SUBJECT_LENGTH) return value;
  return `sha256:${createHash("sha256").update(value).digest("base64url")}`;
}

/**
 * The address a client is counted under. An IPv6 host usually holds a whole /64, so one address
 * of it is worth no more than another: IPv6 is counted per /64, IPv4 (and IPv4-mapped IPv6) per
 * address.
 */
export function addressSubject(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1] as string;
  if (isIPv4(ip) || !isIPv6(ip)) return ip;
  return `${expandIPv6(ip).slice(0, 4).join(":")}::/64`;
}

/** The eight hextets of an IPv6 address (zone dropped, embedded IPv4 converted). */
function expandIPv6(ip: string): string[] {
  let address = ip.split("%")[0] as string;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    address = `${address.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = address.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const fill = tail === undefined ? [] : Array(8 - left.length - right.length).fill("0");
  return [...left, ...fill, ...right].map((h) => Number.parseInt(h, 16).toString(16));
}

/** A user name as the login brake counts it: the way local accounts compare names. */
export function userSubject(name: string): string {
  return name.trim().toLowerCase();
}
