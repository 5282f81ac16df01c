/**
 * The abuse-brake counter on a real store: fixed windows aligned to their length (Retry-After
 * and the counter's TTL both run to the window's end), counting on `take` and `record` but not
 * on `blocked`, one audit event per closed brake, and the subjects it counts under (IPv6 per
 * /64, IPv4-mapped as IPv4, long values hashed). The clock is the limiter's own parameter, so
 * window boundaries are exact rather than waited for.
 */
import { describe, expect, it } from "vitest";
import type { AuditEvent } from "../../src/ops/audit.js";
import {
  addressSubject,
  type Brake,
  RATE_NAMESPACE,
  RateLimiter,
  userSubject,
} from "../../src/ops/rate-limit.js";
import { SqliteStore } from "../../src/store/sqlite.js";

const WINDOW = 600;
/** 150 s into a 600 s window. */
const T0 = 1_800_000_000_000 - (1_800_000_000_000 % (WINDOW * 1000)) + 150_000;

function setup(enabled = true) {
  const store = new SqliteStore(":memory:");
  const events: AuditEvent[] = [];
  let now = T0;
  const limiter = new RateLimiter(store, { emit: (e) => events.push(e) }, enabled, () => now);
  return {
    store,
    events,
    limiter,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const brake = (max: number, subject = "192.0.2.1"): Brake => ({
  rule: "test.per_address",
  subject: { address: subject },
  limit: { max, window: WINDOW },
});

describe("RateLimiter", () => {
  it("take: max pass, the next is refused until the window ends; one audit event when it closes", async () => {
    const { limiter, events, advance, store } = setup();
    for (let i = 0; i < 3; i++) expect(await limiter.take([brake(3)])).toBeUndefined();
    expect(await limiter.take([brake(3)])).toEqual({ rule: "test.per_address", retryAfter: 450 });
    advance(440_000);
    expect(await limiter.take([brake(3)])).toEqual({ rule: "test.per_address", retryAfter: 10 });
    expect(events).toEqual([
      { type: "rate.limited", rule: "test.per_address", address: "192.0.2.1", retry_after: 450 },
    ]);
    // The counter disappears with its window: 450 s after its first count (the store's clock).
    const [entry] = await store.list(RATE_NAMESPACE);
    const left = (entry?.expiresAt ?? 0) - Date.now();
    expect(left).toBeGreaterThan(430_000);
    expect(left).toBeLessThanOrEqual(450_000);
    advance(10_000);
    expect(await limiter.take([brake(3)])).toBeUndefined();
    await store.close();
  });

  it("take counts every brake, and names the first one past its max", async () => {
    const { limiter, store } = setup();
    const perClient: Brake = {
      rule: "t.per_client",
      subject: { client_id: "c" },
      limit: { max: 1, window: 60 },
    };
    expect(await limiter.take([brake(5), perClient])).toBeUndefined();
    expect((await limiter.take([brake(5), perClient]))?.rule).toBe("t.per_client");
    expect((await store.list(RATE_NAMESPACE)).map((e) => e.value)).toEqual([2, 2]);
    await store.close();
  });

  it("blocked counts nothing; record closes the brake at max", async () => {
    const { limiter, events, store } = setup();
    expect(await limiter.blocked([brake(2)])).toBeUndefined();
    await limiter.record([brake(2)]);
    expect(await limiter.blocked([brake(2)])).toBeUndefined();
    expect(events).toEqual([]);
    await limiter.record([brake(2)]);
    expect(await limiter.blocked([brake(2)])).toEqual({ rule: "test.per_address", retryAfter: 450 });
    expect(await limiter.blocked([brake(2, "192.0.2.2")])).toBeUndefined();
    expect(events.map((e) => e.type)).toEqual(["rate.limited"]);
    await store.close();
  });

  it("counts nothing when rate_limits.enabled is off", async () => {
    const { limiter, store } = setup(false);
    for (let i = 0; i < 5; i++) expect(await limiter.take([brake(1)])).toBeUndefined();
    expect(await store.list(RATE_NAMESPACE)).toEqual([]);
    await store.close();
  });

  it("keeps subjects bounded: a long client id is counted under its hash", async () => {
    const { limiter, store } = setup();
    const long = `https://client.example/${"x".repeat(500)}`;
    await limiter.take([
      { rule: "t.per_client", subject: { client_id: long }, limit: { max: 5, window: 60 } },
    ]);
    const [entry] = await store.list(RATE_NAMESPACE);
    expect(entry?.key).toMatch(/^t\.per_client:\d+:sha256:[\w-]{43}$/);
    await store.close();
  });
});

describe("subjects", () => {
  it("IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 per /64", () => {
    expect(addressSubject("203.0.113.9")).toBe("203.0.113.9");
    expect(addressSubject("::ffff:203.0.113.9")).toBe("203.0.113.9");
    expect(addressSubject("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(addressSubject("2001:db8:1:2:ffff:eeee:dddd:cccc")).toBe("2001:db8:1:2::/64");
    expect(addressSubject("2001:0db8:0001:0002::")).toBe("2001:db8:1:2::/64");
    expect(addressSubject("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(addressSubject("::1")).toBe("0:0:0:0::/64");
    expect(addressSubject("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
  });

  it("user names as local accounts compare them", () => {
    expect(userSubject("  Henry ")).toBe("henry");
  });
});
