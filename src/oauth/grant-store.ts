/**
 * Authorization state that outlives one request: codes, grants and their refresh tokens.
 * Bearer values are keyed by their SHA-256 hash; the raw value exists only in the response.
 *
 *   codes:{hash}         an unused authorization code            TTL code lifetime
 *   codes_used:{hash}    a redeemed code -> its grant (replay)    TTL code lifetime
 *   grants:{sid}         one login's grant (user, client, scope)  TTL refresh lifetime, renewed on refresh
 *
 * Refresh tokens are one family per grant (refresh-tokens.ts, store/refresh-rotation.ts).
 *
 * Every grant is in its user's and its client's index (owners.ts) for twice the refresh
 * lifetime, renewed only when the grant, renewed at each refresh, could outlive it: so a refresh
 * writes nothing more than it did before the indexes, except about once per refresh lifetime.
 */

import { hashSecret } from "../crypto/secrets.js";
import type { UserIdentity } from "../idp/idp.js";
import type { Store } from "../store/store.js";
import { clientIndex, indexEntry, memberOf, userIndex } from "./owners.js";
import {
  type PresentedRefreshToken,
  type RefreshChecks,
  type RefreshTokenOptions,
  RefreshTokens,
  type RotationResult,
  type StepResult,
} from "./refresh-tokens.js";

const GRANTS = "grants";

export interface AuthorizationCode {
  client_id: string;
  redirect_uri: string;
  code_challenge: string;
  scope: string[];
  /** Canonical resource URLs the code was authorized for (RFC 8707). */
  resources: string[];
  user: UserIdentity;
  auth_time: number;
  /** When the identity provider last vouched for the user, if later than auth_time (a reused session). */
  checked_at?: number;
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
  /** When the identity provider last vouched for the user (liveness.ts); auth_time if never since. */
  checked_at?: number;
  /** Until when (seconds since the epoch) the grant is listed in its owners' indexes. */
  indexed_until?: number;
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

  /**
   * Writes a grant for the refresh lifetime from now. Its index entries are written first, and
   * only when they would expire before the grant does (a new grant; one refreshed for longer
   * than the refresh lifetime since they were written).
   */
  async saveGrant(grant: Grant): Promise<void> {
    const saved = await this.indexed(grant);
    await this.store.put(GRANTS, grant.sid, saved as never, this.ttl.refresh);
  }

  /**
   * A refresh: rotates the grant's refresh token and, in the same atomic store step, renews the
   * grant for the refresh lifetime (sliding: it lives as long as its newest refresh token). The
   * grant is written only when a token is handed out; its index entries, when due, before.
   */
  async rotateRefresh(grant: Grant, presented: PresentedRefreshToken): Promise<RotationResult> {
    const saved = await this.indexed(grant);
    return this.refresh.rotate(presented, {
      ns: GRANTS,
      key: grant.sid,
      value: saved as never,
      ttlSeconds: this.ttl.refresh,
    });
  }

  /**
   * A plain refresh of grant `sid` in one atomic store step, where the store can
   * (RefreshTokens.inOneStep): the rotation and the grant's renewal, if the grant is live and
   * passes `checks`, and its index entries need no renewal (else declined, nothing changed).
   */
  refreshInOneStep(
    sid: string,
    token: string,
    checks: Omit<RefreshChecks, "grant" | "indexedUntil">,
  ): Promise<StepResult> {
    return this.refresh.refreshInOneStep(token, {
      ...checks,
      grant: { ns: GRANTS, key: sid },
      // As indexed(): entries that would outlive a grant renewed now need no writing.
      indexedUntil: Math.floor(Date.now() / 1000) + this.ttl.refresh,
    });
  }

  /** The grant as it is to be written, listed in its owners' indexes first when they would expire before it. */
  private async indexed(grant: Grant): Promise<Grant> {
    const now = Math.floor(Date.now() / 1000);
    if ((grant.indexed_until ?? 0) >= now + this.ttl.refresh) return grant;
    const lifetime = 2 * this.ttl.refresh;
    await indexEntry(this.store, ownersOf(grant), GRANTS, grant.sid, lifetime);
    return { ...grant, indexed_until: now + lifetime };
  }

  async getGrant(sid: string): Promise<Grant | undefined> {
    return (await this.store.get(GRANTS, sid)) as Grant | undefined;
  }

  /** Many grants in one round trip, in order; undefined for those that are gone. */
  async getGrants(sids: string[]): Promise<Array<Grant | undefined>> {
    return (await this.store.getMany(GRANTS, sids)) as Array<Grant | undefined>;
  }

  /** Forgets a grant and ends its refresh family. */
  async deleteGrant(sid: string): Promise<boolean> {
    const grant = await this.getGrant(sid);
    if (grant) return this.forgetGrant(grant);
    await this.refresh.end(sid);
    return this.store.delete(GRANTS, sid);
  }

  /** Forgets a grant already read: ends its family, deletes it, and takes it out of its owners' indexes. */
  async forgetGrant(grant: Grant): Promise<boolean> {
    await this.refresh.end(grant.sid);
    const existed = await this.store.delete(GRANTS, grant.sid);
    const member = memberOf(GRANTS, grant.sid);
    await Promise.all(ownersOf(grant).map((owner) => this.store.indexRemove(owner, [member])));
    return existed;
  }

  /**
   * Forgets many grants already read, with a few multi-key deletions instead of five commands
   * each: their families, the grants, and one removal per owner index they are listed in
   * (`except`, the index of an owner whose access is being ended, is emptied by the caller).
   */
  async forgetGrants(grants: Grant[], except?: string): Promise<void> {
    if (grants.length === 0) return;
    const sids = grants.map((g) => g.sid);
    const byOwner = new Map<string, string[]>();
    for (const grant of grants) {
      for (const owner of ownersOf(grant)) {
        if (owner === except) continue;
        const members = byOwner.get(owner);
        if (members) members.push(memberOf(GRANTS, grant.sid));
        else byOwner.set(owner, [memberOf(GRANTS, grant.sid)]);
      }
    }
    // The families first: a grant without its family can no longer refresh, the other way round it could.
    await this.refresh.endMany(sids);
    await this.store.deleteMany(GRANTS, sids);
    await Promise.all([...byOwner].map(([owner, members]) => this.store.indexRemove(owner, members)));
  }

  /** Every grant: a scan of the namespace, for `admin tokens list` and backups, never to revoke. */
  async listGrants(): Promise<Grant[]> {
    return (await this.store.list(GRANTS)).map((e) => e.value as unknown as Grant);
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

/** The indexes a grant is listed in: its user's and its client's. */
export function ownersOf(grant: Pick<Grant, "user" | "client_id">): string[] {
  return [userIndex(grant.user.sub), clientIndex(grant.client_id)];
}
