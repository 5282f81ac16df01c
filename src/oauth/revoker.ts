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
import { clientIndex, indexExisting, memberOf, ownedEntries, userIndex } from "./owners.js";

/** Namespaces an owner index lists whose entries are deleted as they are (no family, no cascade). */
const PLAIN = ["sessions", "consents", "upstream"] as const;
/**
 * Deletions in flight at once. On Redis the commands of a chunk go out back to back on one
 * connection (pipelined), so a chunk costs about the round trips of one deletion: an owner of a
 * few hundred entries is one chunk. SQLite runs them one by one anyway. The bound keeps an owner
 * of very many entries from queueing all of them at once.
 */
const CHUNK = 512;

async function inChunks<T>(items: T[], fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += CHUNK) await Promise.all(items.slice(i, i + CHUNK).map(fn));
}

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

  /** Deletes everything an owner's index lists, then the listed members. */
  private async endOwned(owner: string): Promise<{ grants: number; sessions: number; consents: number }> {
    await this.prepare();
    const { members, byNamespace } = await ownedEntries(this.store, owner);
    const sids = byNamespace.get("grants") ?? [];
    const grants = (await this.grants.getGrants(sids)).filter((g): g is Grant => g !== undefined);
    const counts = { grants: grants.length, sessions: 0, consents: 0 };
    // Grants and the plain entries at once: none depends on another, so their round trips overlap
    // instead of adding up (a grant's own steps stay in order inside forgetGrant).
    await Promise.all([
      inChunks(grants, (grant) => this.grants.forgetGrant(grant)),
      ...PLAIN.map((ns) =>
        inChunks(byNamespace.get(ns) ?? [], async (key) => {
          const existed = await this.store.delete(ns, key);
          if (existed && ns !== "upstream") counts[ns]++;
        }),
      ),
    ]);
    // forgetGrant took the grants out already; the rest (and members whose entry was gone) here.
    const done = new Set(grants.map((g) => memberOf("grants", g.sid)));
    const rest = members.filter((m) => !done.has(m));
    if (rest.length) await this.store.indexRemove(owner, rest);
    return counts;
  }
}
