/**
 * A person's own grants, as /account shows them: which applications act for them, for which
 * services, since when, and when each last renewed its access; and ending one of them.
 *
 * "Last used" is the refresh family's `issued_at` (store/refresh-rotation.ts): when the grant's
 * current refresh token was issued, i.e. its last refresh, or the code exchange if it never
 * refreshed. Access-token use at the resource side is not recorded, so an application that only
 * spends its first access token shows its start.
 */
import { StoreUnavailableError } from "../store/errors.js";
import { FAMILY_NS, familyKey, isValidSid, type RefreshFamily } from "../store/refresh-rotation.js";
import type { Grant } from "./grant-store.js";
import { ownedEntries, userIndex } from "./owners.js";
import type { AuthorizationServer } from "./server.js";

export interface AccountGrant {
  sid: string;
  clientId: string;
  clientName: string;
  /** Service names the grant is for; empty = every service. */
  services: string[];
  /** Seconds since the epoch. */
  createdAt: number;
  /** Seconds since the epoch. */
  lastUsedAt: number;
}

/** The identity a grant or session belongs to: the provider's stable id, on that provider. */
export interface Owner {
  sub: string;
  provider: string;
}

const owns = (owner: Owner, grant: Grant) =>
  grant.user.sub === owner.sub && grant.user.provider === owner.provider;

export class AccountGrants {
  constructor(private readonly as: AuthorizationServer) {}

  /**
   * Every live grant of `owner`, read through their owner index (owners.ts): the cost is what
   * they hold, never the size of the grants namespace. Grants stored before the index existed
   * are indexed by the once-per-store migration; it is awaited here (it is usually done at
   * start-up), so the page never misses them while it runs. The index is keyed by sub alone:
   * the provider is checked on each grant.
   */
  async grantsOf(owner: Owner): Promise<Grant[]> {
    await this.as.revoker.prepare();
    const { byNamespace } = await ownedEntries(this.as.parts.store, userIndex(owner.sub));
    const grants = await this.as.grants.getGrants(byNamespace.get("grants") ?? []);
    return grants.filter((g): g is Grant => g !== undefined && owns(owner, g));
  }

  async list(owner: Owner): Promise<AccountGrant[]> {
    const grants = await this.grantsOf(owner);
    const views = await Promise.all(grants.map((g) => this.view(g)));
    return views.sort((a, b) => b.lastUsedAt - a.lastUsedAt || a.clientName.localeCompare(b.clientName));
  }

  /**
   * Ends `sid` if `owner` holds it: its tokens are revoked and its refresh family ended, and the
   * remembered consent for that client is forgotten, so the application has to ask again rather
   * than get a new code silently. False for a grant that is not theirs (or gone).
   */
  async revoke(owner: Owner, sid: string): Promise<boolean> {
    if (!isValidSid(sid)) return false;
    const grant = await this.as.grants.getGrant(sid);
    if (!grant || !owns(owner, grant)) return false;
    await this.as.endGrant(sid, "account");
    // consents:{sub}:{client_id}, as oauth/interaction.ts keeps them.
    await this.as.parts.store.delete("consents", `${owner.sub}:${grant.client_id}`);
    return true;
  }

  private async view(grant: Grant): Promise<AccountGrant> {
    const { resources } = this.as.parts;
    const family = (await this.as.parts.store.get(FAMILY_NS, familyKey(grant.sid))) as
      | RefreshFamily
      | undefined;
    return {
      sid: grant.sid,
      clientId: grant.client_id,
      clientName: await this.clientName(grant.client_id),
      services: [...new Set(grant.resources.map((r) => resources.serviceFor(r) ?? r))],
      createdAt: grant.created_at,
      lastUsedAt: Math.max(grant.created_at, family?.issued_at ?? 0),
    };
  }

  /** The registered name; a metadata document's from its (cached) document; else the id. */
  private async clientName(clientId: string): Promise<string> {
    const client = await this.as.lookupClient(clientId).catch((err: unknown) => {
      // A document that cannot be fetched now still lists its grant; a store outage is a 503.
      if (err instanceof StoreUnavailableError) throw err;
      return undefined;
    });
    return client?.client_name ?? clientId;
  }
}
