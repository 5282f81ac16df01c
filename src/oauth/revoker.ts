/**
 * Ending access: a grant (one login and every token from it), a client, or a user. Shared by
 * the authorization server and the admin CLI so both revoke the same way and audit it.
 */
import type { Audit } from "../ops/audit.js";
import type { Store } from "../store/store.js";
import type { Revocations } from "../tokens/revocations.js";
import type { GrantStore } from "./grant-store.js";
import type { EndGrant } from "./grants/grant.js";

export class Revoker {
  constructor(
    private readonly store: Store,
    private readonly revocations: Revocations,
    private readonly grants: GrantStore,
    private readonly audit: Audit,
  ) {}

  /** Revokes every token of a grant and forgets it. */
  readonly endGrant: EndGrant = async (sid, reason) => {
    await this.revocations.revokeGrant(sid);
    await this.grants.deleteGrant(sid);
    this.audit.emit({ type: "grant.revoked", sid, reason });
  };

  /** A deleted client: every token it holds is revoked, its grants and consents forgotten. */
  async revokeClient(clientId: string): Promise<void> {
    await this.revocations.revokeClient(clientId);
    for (const grant of await this.grants.listGrants()) {
      if (grant.client_id === clientId) await this.grants.deleteGrant(grant.sid);
    }
    for (const { key } of await this.store.list("consents")) {
      if (key.endsWith(`:${clientId}`)) await this.store.delete("consents", key);
    }
    this.audit.emit({ type: "client.deleted", client_id: clientId });
  }

  /** A removed user: every token issued to them is revoked and their grants forgotten. */
  async revokeUser(sub: string): Promise<void> {
    await this.revocations.revokeUser(sub);
    for (const grant of await this.grants.listGrants()) {
      if (grant.user.sub === sub) await this.grants.deleteGrant(grant.sid);
    }
  }
}
