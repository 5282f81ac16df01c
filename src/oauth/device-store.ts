/**
 * Device authorization requests (RFC 8628), from /device_authorization to the tokens they end
 * in. The device code is a 256-bit bearer secret and the user code a short one: both are kept
 * only as SHA-256 hashes. One request is spread over entries that each have one writer, so no
 * write can undo another (a poll never overwrites an approval):
 *
 *   device:{sha256(device_code)}             the request: client, scope, resources, expiry  TTL retention
 *   device_users:{sha256(user code)}         -> the request's key, while the code may be typed TTL device_code_ttl
 *   device_decisions:{key}                   the person's answer (put-if-absent: one answer)  TTL retention
 *   device_polls:{key}                       {last poll, interval}: the device's pace          TTL retention
 *   device_used:{key}                        {sid, at}: the grant it produced (put-if-absent = the claim) TTL retention
 *
 * `retention` is the code's lifetime and as long again (at least a minute): a device that polls
 * just after expiry hears `expired_token` rather than that its code is unknown.
 */
import { hashSecret, newSecret } from "../crypto/secrets.js";
import type { UserIdentity } from "../idp/idp.js";
import type { Store } from "../store/store.js";
import type { UsedMark } from "./grant-store.js";
import { formatUserCode, newUserCode, normalizeUserCode } from "./user-code.js";

/** RFC 8628 §3.5: each slow_down adds this much to the interval the device must keep. */
export const SLOW_DOWN_STEP_SECONDS = 5;

/** Fresh user codes tried when one collides with a live code (one in ~10^10 per live code). */
const USER_CODE_ATTEMPTS = 5;

/** What the device asked for: fixed when it is created. */
export interface DeviceRequest {
  client_id: string;
  scope: string[];
  /** Canonical resource URLs (RFC 8707). */
  resources: string[];
  /** Epoch milliseconds. */
  created_at: number;
  /** Epoch milliseconds: after this the codes are dead (expired_token). */
  expires_at: number;
  user_code_hash: string;
}

export type DeviceDecision =
  | { approved: true; user: UserIdentity; auth_time: number; at: number }
  | { approved: false; user: string; at: number };

/** A request found by one of its codes; `key` names it in the other namespaces. */
export interface FoundDevice {
  key: string;
  request: DeviceRequest;
}

export interface IssuedDeviceCodes {
  deviceCode: string;
  /** Display form, XXXX-XXXX. */
  userCode: string;
  expiresIn: number;
  interval: number;
}

export interface PollPace {
  /** Whether this poll came sooner than the interval after the previous one. */
  tooFast: boolean;
  /** The interval the device must keep from now on (seconds). */
  interval: number;
}

interface PollState {
  /** Epoch milliseconds of the previous poll. */
  last: number;
  interval: number;
}

export interface DeviceSettings {
  /** Lifetime of the device and user codes (seconds): `tokens.device_code_ttl`. */
  ttl: number;
  /** The least time between polls (seconds): `tokens.device_poll_interval`. */
  interval: number;
}

export class DeviceStore {
  private readonly retention: number;

  constructor(
    private readonly store: Store,
    private readonly settings: DeviceSettings,
    /** Epoch milliseconds; tests of expiry and pace give their own. */
    readonly now: () => number = Date.now,
  ) {
    this.retention = settings.ttl + Math.max(settings.ttl, 60);
  }

  /** A new request with its two codes. */
  async create(access: Pick<DeviceRequest, "client_id" | "scope" | "resources">): Promise<IssuedDeviceCodes> {
    const deviceCode = newSecret();
    const key = hashSecret(deviceCode);
    const userCode = await this.reserveUserCode(key);
    const now = this.now();
    const request: DeviceRequest = {
      ...access,
      created_at: now,
      expires_at: now + this.settings.ttl * 1000,
      user_code_hash: hashSecret(userCode),
    };
    await this.store.put("device", key, request as never, this.retention);
    return {
      deviceCode,
      userCode: formatUserCode(userCode),
      expiresIn: this.settings.ttl,
      interval: this.settings.interval,
    };
  }

  /** A user code is unique among live ones: put-if-absent decides, a collision draws again. */
  private async reserveUserCode(key: string): Promise<string> {
    for (let i = 0; i < USER_CODE_ATTEMPTS; i++) {
      const code = newUserCode();
      if (await this.store.putIfAbsent("device_users", hashSecret(code), { key }, this.settings.ttl))
        return code;
    }
    throw new Error("could not draw a unique user code");
  }

  /**
   * The undecided, unexpired request a person's code names, or undefined (a typo, an expired or
   * an answered code all look the same to whoever types it).
   */
  async findByUserCode(input: string | undefined): Promise<FoundDevice | undefined> {
    const code = normalizeUserCode(input);
    if (!code) return undefined;
    const index = (await this.store.get("device_users", hashSecret(code))) as { key: string } | undefined;
    if (!index) return undefined;
    const found = await this.byKey(index.key);
    if (!found || this.expired(found.request)) return undefined;
    if (await this.decision(found.key)) return undefined;
    return found;
  }

  /** The request a device code names (expired or not), or undefined. */
  get(deviceCode: string): Promise<FoundDevice | undefined> {
    return this.byKey(hashSecret(deviceCode));
  }

  private async byKey(key: string): Promise<FoundDevice | undefined> {
    const request = (await this.store.get("device", key)) as DeviceRequest | undefined;
    return request ? { key, request } : undefined;
  }

  expired(request: DeviceRequest): boolean {
    return this.now() >= request.expires_at;
  }

  /**
   * Records the person's answer; false when another answer came first (two tabs, two
   * instances). The user code stops working once answered.
   */
  async decide(found: FoundDevice, decision: DeviceDecision): Promise<boolean> {
    if (!(await this.store.putIfAbsent("device_decisions", found.key, decision as never, this.retention)))
      return false;
    await this.store.delete("device_users", found.request.user_code_hash);
    return true;
  }

  async decision(key: string): Promise<DeviceDecision | undefined> {
    return (await this.store.get("device_decisions", key)) as DeviceDecision | undefined;
  }

  /**
   * Counts a poll against the device's pace (RFC 8628 §3.5): sooner than the interval after the
   * previous poll is too fast, and the interval grows by 5 s for this and every later poll.
   * Read-then-write: two polls of one device racing each other may count as one, which only
   * ever spares a device one slow_down; nothing else writes this entry.
   */
  async poll(key: string): Promise<PollPace> {
    const now = this.now();
    const previous = (await this.store.get("device_polls", key)) as PollState | undefined;
    let interval = previous?.interval ?? this.settings.interval;
    const tooFast = previous !== undefined && now - previous.last < interval * 1000;
    if (tooFast) interval += SLOW_DOWN_STEP_SECONDS;
    const state: PollState = { last: now, interval };
    await this.store.put("device_polls", key, state as never, this.retention);
    return { tooFast, interval };
  }

  /**
   * Single use, as GrantStore.claimCode: the used mark's put-if-absent decides which of any
   * number of concurrent redemptions (on any instance) gets the tokens; every other one finds
   * the mark, with the grant it produced.
   */
  async claim(key: string, sid: string): Promise<boolean> {
    const mark: UsedMark = { sid, at: Date.now() };
    if (!(await this.store.putIfAbsent("device_used", key, mark as never, this.retention))) return false;
    await Promise.all([
      this.store.delete("device", key),
      this.store.delete("device_decisions", key),
      this.store.delete("device_polls", key),
    ]);
    return true;
  }

  async used(deviceCode: string): Promise<UsedMark | undefined> {
    return (await this.store.get("device_used", hashSecret(deviceCode))) as UsedMark | undefined;
  }
}
