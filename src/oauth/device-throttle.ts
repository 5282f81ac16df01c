/**
 * The brake on guessing user codes at /device (RFC 8628 §5.1). Only a signed-in person can type
 * a code, so guesses are counted per user, whatever session or address they come from (signing
 * in again does not reset it), and per address, higher, for many accounts behind one address.
 * Wrong codes are counted, right ones are not: a person who mistypes once is not slowed down.
 * With the defaults (10 per user per 15 min) one account makes at most ~350,000 guesses a year
 * against 20^8 ≈ 2.6 × 10^10 codes, each of which lives 10 minutes. Counters: STORAGE.md
 * (`rate`, rules `device.*`).
 */
import {
  addressSubject,
  type Brake,
  type Limit,
  type RateLimiter,
  type Refusal,
  userSubject,
} from "../ops/rate-limit.js";

export interface DeviceEntryLimits {
  per_user: Limit;
  per_address: Limit;
}

export class DeviceEntryThrottle {
  constructor(
    private readonly limiter: RateLimiter,
    private readonly limits: DeviceEntryLimits,
  ) {}

  private brakes(ip: string, user: string): Brake[] {
    return [
      { rule: "device.per_user", subject: { user: userSubject(user) }, limit: this.limits.per_user },
      {
        rule: "device.per_address",
        subject: { address: addressSubject(ip) },
        limit: this.limits.per_address,
      },
    ];
  }

  /** Why this entry must wait (and for how long), before the code is even looked up. */
  blocked(ip: string, user: string): Promise<Refusal | undefined> {
    return this.limiter.blocked(this.brakes(ip, user));
  }

  failed(ip: string, user: string): Promise<void> {
    return this.limiter.record(this.brakes(ip, user));
  }
}
