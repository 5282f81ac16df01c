/**
 * Ending access: a grant (one login and every token from it), a client, or a user. Shared by
 * the authorization server and the admin CLI so both revoke the same way and audit it.
 *
 * A client's or a user's access is found through their owner index (owners.ts): the cost is
 * what they own, never the size of the store.
 */
import type { Audit, UserEndReason } from "../ops/audit.js";
import type { Store } from "../store/store.js";
import type { Revocations } from "../tokens/revocations.js";
import type { Grant, GrantStore } from "./grant-store.js";
import type { EndGrant } from "./grants/grant.js";
import { clientIndex, indexExisting, ownedEntries, userIndex } from "./owners.js";

/** Namespaces an owner index lists whose entries are deleted as they are (no family, no cascade). */
const PLAIN = ["sessions", "consents", "upstream"] as const;

export class Revoker {
  constructor(
    private readonly store: Store,
    private readonly revocations: Revocations,
    private readonly grants: GrantStore,
    private readonly audit: Audit,
    /** Lifetimes for indexing what an older version stored (owners.ts indexExisting). */
    private readonly lifetimes: { refresh: number; session: number },
  ) {}

  /** Entries from before the owner indexes, indexed once per store (checked once per process). */
  private indexed?: Promise<void>;

  /** Indexes what an older version stored, if not done yet: at start-up, and before any revocation. */
  prepare(): Promise<void> {
    this.indexed ??= indexExisting(this.store, {
      grant: 2 * this.lifetimes.refresh,
      session: this.lifetimes.session,
    }).catch((err: unknown) => {
      this.indexed = undefined;
      throw err;
    });
    return this.indexed;
  }

  /** Revokes every token of a grant and forgets it. */
  readonly endGrant: EndGrant = async (sid, reason) => {
    await this.revocations.revokeGrant(sid);
    await this.grants.deleteGrant(sid);
    this.audit.emit({ type: "grant.revoked", sid, reason });
  };

  /** A deleted client: every token it holds is revoked, its grants and consents forgotten. */
  async revokeClient(clientId: string): Promise<void> {
    await this.revocations.revokeClient(clientId);
    await this.endOwned(clientIndex(clientId));
    this.audit.emit({ type: "client.deleted", client_id: clientId });
  }

  /**
   * A removed or disabled user, or one the identity provider no longer vouches for: every token
   * issued to them is revoked; their grants, browser sessions, remembered consents and upstream
   * credentials are forgotten, so the next /authorize asks them to sign in again.
   */
  async revokeUser(sub: string, why: { login?: string; reason: UserEndReason; at?: string }): Promise<void> {
    await this.revocations.revokeUser(sub);
    const ended = await this.endOwned(userIndex(sub));
    this.audit.emit({
      type: "user.revoked",
      user: why.login ?? sub,
      reason: why.reason,
      at: why.at,
      ...ended,
    });
  }

  /**
   * Deletes everything an owner's index lists, then the index. A few multi-key deletions per
   * namespace (Store.deleteMany) and one index removal per other owner of the grants, not
   * several commands per entry: ending a client with 100 grants and 100 consents of 100 users
   * is about a hundred Redis commands, most of them the users' index removals.
   */
  private async endOwned(owner: string): Promise<{ grants: number; sessions: number; consents: number }> {
    await this.prepare();
    const { members, byNamespace } = await ownedEntries(this.store, owner);
    const sids = byNamespace.get("grants") ?? [];
    const grants = (await this.grants.getGrants(sids)).filter((g): g is Grant => g !== undefined);
    // None depends on another, so their round trips overlap instead of adding up.
    const [, sessions, consents] = await Promise.all([
      this.grants.forgetGrants(grants, owner),
      ...PLAIN.map((ns) => this.store.deleteMany(ns, byNamespace.get(ns) ?? [])),
    ]);
    if (members.length) await this.store.indexRemove(owner, members);
    return { grants: grants.length, sessions: sessions ?? 0, consents: consents ?? 0 };
  }
}
