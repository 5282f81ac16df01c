/**
 * The brake on password guessing: failed logins are counted in the store (so every gateway
 * instance sees them) per user name, whatever address they come from, and per address. The
 * per-user count is what stops guessing one account's password from many addresses; the
 * per-address count, far higher, stops spraying many names from one address without locking
 * out the many people who share one (a company NAT, a proxy). Successful logins are not counted.
 * Counters and their windows: ops/rate-limit.ts, STORAGE.md (`rate`, rules `login.*`).
 */
import {
  addressSubject,
  type Brake,
  type Limit,
  type RateLimiter,
  type Refusal,
  userSubject,
} from "../ops/rate-limit.js";

export interface LoginLimits {
  per_user: Limit;
  per_address: Limit;
}

export class LoginThrottle {
  constructor(
    private readonly limiter: RateLimiter,
    private readonly limits: LoginLimits,
  ) {}

  private brakes(ip: string, username: string): Brake[] {
    return [
      { rule: "login.per_user", subject: { user: userSubject(username) }, limit: this.limits.per_user },
      { rule: "login.per_address", subject: { address: addressSubject(ip) }, limit: this.limits.per_address },
    ];
  }

  /** Why this attempt must wait (and for how long), before the password is even checked. */
  blocked(ip: string, username: string): Promise<Refusal | undefined> {
    return this.limiter.blocked(this.brakes(ip, username));
  }

  failed(ip: string, username: string): Promise<void> {
    return this.limiter.record(this.brakes(ip, username));
  }
}
