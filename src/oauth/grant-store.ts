/**
 * Authorization state that outlives one request: codes, grants and their refresh tokens.
 * Bearer values are keyed by their SHA-256 hash; the raw value exists only in the response.
 *
 *   codes:{hash}         an unused authorization code            TTL code lifetime
 *   codes_used:{hash}    a redeemed code -> its grant (replay)    TTL code lifetime
 *   grants:{sid}         one login's grant (user, client, scope)  TTL refresh lifetime, renewed on refresh
 *
 * Refresh tokens are one family per grant (refresh-tokens.ts, store/refresh-rotation.ts).
 */

import { hashSecret } from "../crypto/secrets.js";
import type { UserIdentity } from "../idp/idp.js";
import type { Store } from "../store/store.js";
import { type RefreshTokenOptions, RefreshTokens } from "./refresh-tokens.js";

export interface AuthorizationCode {
  client_id: string;
  redirect_uri: string;
  code_challenge: string;
  scope: string[];
  /** Canonical resource URLs the code was authorized for (RFC 8707). */
  resources: string[];
  user: UserIdentity;
  auth_time: number;
}

export interface Grant {
  sid: string;
  client_id: string;
  user: UserIdentity;
  scope: string[];
  resources: string[];
  /** Seconds since the epoch. */
  created_at: number;
  auth_time: number;
}

/** What a live refresh token stands for (introspection, revocation): its grant's client, scope and audience. */
export interface RefreshToken {
  sid: string;
  client_id: string;
  scope: string[];
  resources: string[];
  issued_at: number;
}

export interface UsedMark {
  sid: string;
  /** Epoch milliseconds when it was used. */
  at: number;
}

export class GrantStore {
  readonly refresh: RefreshTokens;

  constructor(
    private readonly store: Store,
    private readonly ttl: { code: number; refresh: number },
    /** Rotation rules; the admin CLI, which never rotates, leaves them out. */
    rotation: Omit<RefreshTokenOptions, "ttlSeconds"> = { graceSeconds: 0 },
  ) {
    this.refresh = new RefreshTokens(store, { ...rotation, ttlSeconds: ttl.refresh });
  }

  saveCode(code: string, data: AuthorizationCode): Promise<void> {
    return this.store.put("codes", hashSecret(code), data as never, this.ttl.code);
  }

  /** The code's data without claiming it, to validate a redemption before anything is spent. */
  async peekCode(code: string): Promise<AuthorizationCode | undefined> {
    return (await this.store.get("codes", hashSecret(code))) as AuthorizationCode | undefined;
  }

  /**
   * Single use, decided in one atomic step (the used mark's put-if-absent): of concurrent
   * redemptions on any number of instances exactly one gets the code, and every other one finds
   * it marked as used by `sid` (a replay), never a moment where it is neither live nor marked.
   */
  async claimCode(code: string, sid: string): Promise<AuthorizationCode | undefined> {
    const key = hashSecret(code);
    const stored = (await this.store.get("codes", key)) as AuthorizationCode | undefined;
    if (!stored) return undefined;
    const mark: UsedMark = { sid, at: Date.now() };
    if (!(await this.store.putIfAbsent("codes_used", key, mark as never, this.ttl.code))) return undefined;
    await this.store.delete("codes", key);
    return stored;
  }

  async usedCode(code: string): Promise<UsedMark | undefined> {
    return (await this.store.get("codes_used", hashSecret(code))) as UsedMark | undefined;
  }

  saveGrant(grant: Grant): Promise<void> {
    return this.store.put("grants", grant.sid, grant as never, this.ttl.refresh);
  }

  async getGrant(sid: string): Promise<Grant | undefined> {
    return (await this.store.get("grants", sid)) as Grant | undefined;
  }

  /** Forgets a grant and ends its refresh family. */
  async deleteGrant(sid: string): Promise<boolean> {
    await this.refresh.end(sid);
    return this.store.delete("grants", sid);
  }

  async listGrants(): Promise<Grant[]> {
    return (await this.store.list("grants")).map((e) => e.value as unknown as Grant);
  }

  /** The grant behind a live (current) refresh token; undefined for rotated, unknown or ended ones. */
  async peekRefresh(token: string): Promise<RefreshToken | undefined> {
    const presented = await this.refresh.inspect(token);
    if (presented?.standing !== "current") return undefined;
    const grant = await this.getGrant(presented.sid);
    if (!grant) return undefined;
    return {
      sid: grant.sid,
      client_id: grant.client_id,
      scope: grant.scope,
      resources: grant.resources,
      issued_at: presented.currentIssuedAt,
    };
  }

  /** Ends the family of a refresh token (after its grant was revoked). */
  async takeRefresh(token: string): Promise<void> {
    const presented = await this.refresh.inspect(token);
    if (presented) await this.refresh.end(presented.sid);
  }
}
