/**
 * Authorization state that outlives one request: codes, grants and refresh tokens.
 * Bearer values are keyed by their SHA-256 hash; the raw value exists only in the response.
 *
 *   codes:{hash}         an unused authorization code            TTL code lifetime
 *   codes_used:{hash}    a redeemed code -> its grant (replay)    TTL code lifetime
 *   grants:{sid}         one login's grant (user, client, scope)  TTL refresh lifetime, renewed on refresh
 *   refresh:{hash}       a live refresh token                     TTL refresh lifetime
 *   refresh_used:{hash}  a rotated refresh token -> its grant     TTL refresh lifetime (reuse detection)
 */

import { hashSecret } from "../crypto/secrets.js";
import type { UserIdentity } from "../idp/idp.js";
import type { Store } from "../store/store.js";

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

/** A rotated refresh token remembers what it carried, to serve a concurrent refresh in the grace window. */
export interface UsedRefreshMark extends UsedMark, RefreshToken {}

export class GrantStore {
  constructor(
    private readonly store: Store,
    private readonly ttl: { code: number; refresh: number },
  ) {}

  saveCode(code: string, data: AuthorizationCode): Promise<void> {
    return this.store.put("codes", hashSecret(code), data as never, this.ttl.code);
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

  deleteGrant(sid: string): Promise<boolean> {
    return this.store.delete("grants", sid);
  }

  async listGrants(): Promise<Grant[]> {
    return (await this.store.list("grants")).map((e) => e.value as unknown as Grant);
  }

  saveRefresh(token: string, data: RefreshToken): Promise<void> {
    return this.store.put("refresh", hashSecret(token), data as never, this.ttl.refresh);
  }

  async peekRefresh(token: string): Promise<RefreshToken | undefined> {
    return (await this.store.get("refresh", hashSecret(token))) as RefreshToken | undefined;
  }

  /** Single use: rotation takes the token; a second taker gets nothing. */
  async takeRefresh(token: string): Promise<RefreshToken | undefined> {
    return (await this.store.take("refresh", hashSecret(token))) as RefreshToken | undefined;
  }

  /**
   * Rotation's single use, as claimCode: of concurrent refreshes on any instance exactly one
   * gets the token's data; the others find the used mark (with the time of the rotation, which
   * the grace window runs from).
   */
  async claimRefresh(token: string): Promise<RefreshToken | undefined> {
    const key = hashSecret(token);
    const data = (await this.store.get("refresh", key)) as RefreshToken | undefined;
    if (!data) return undefined;
    const mark: UsedRefreshMark = { ...data, at: Date.now() };
    if (!(await this.store.putIfAbsent("refresh_used", key, mark as never, this.ttl.refresh)))
      return undefined;
    await this.store.delete("refresh", key);
    return data;
  }

  /** Undoes claimRefresh for a refused request: the token is live again and unmarked. */
  async releaseRefresh(token: string, data: RefreshToken): Promise<void> {
    await this.saveRefresh(token, data);
    await this.store.delete("refresh_used", hashSecret(token));
  }

  async usedRefresh(token: string): Promise<UsedRefreshMark | undefined> {
    return (await this.store.get("refresh_used", hashSecret(token))) as UsedRefreshMark | undefined;
  }
}
