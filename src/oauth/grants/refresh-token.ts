/**
 * refresh_token (OAuth 2.1 §4.3): rotated on every use. Reuse of a rotated token means it was
 * copied: the whole grant is revoked, unless the reuse comes within a short grace window
 * (two tabs or processes refreshing at once), which is served from the same grant. Scope and
 * audience may only narrow; the identity provider's allowlist is checked again.
 */
import type { AccessDecision, UserIdentity } from "../../idp/idp.js";
import type { Revocations } from "../../tokens/revocations.js";
import { invalidGrant, invalidRequest, invalidScope, invalidTarget } from "../errors.js";
import type { GrantStore, RefreshToken } from "../grant-store.js";
import type { TokenIssuer, TokenResponse } from "../issuer.js";
import { type EndGrant, type GrantHandler, splitScope, type TokenRequest } from "./grant.js";

export class RefreshTokenGrant implements GrantHandler {
  readonly grantType = "refresh_token";

  constructor(
    private readonly grants: GrantStore,
    private readonly issuer: TokenIssuer,
    private readonly revocations: Revocations,
    private readonly endGrant: EndGrant,
    private readonly graceSeconds: number,
    /** The identity provider's allowlist as configured now. */
    private readonly checkAccess: (user: UserIdentity) => AccessDecision,
  ) {}

  async handle({ client, params, resources }: TokenRequest): Promise<TokenResponse> {
    const token = params.refresh_token;
    if (!token) throw invalidRequest("refresh_token is required");

    // Claiming marks the token used in the same atomic step, so a concurrent refresh on any
    // instance finds the mark (served inside the grace window, which runs from the rotation;
    // theft outside it), never a moment where the token looks unknown.
    let presented: RefreshToken | undefined = await this.grants.claimRefresh(token);
    const rotatedNow = presented !== undefined;
    if (!presented) {
      const used = await this.grants.usedRefresh(token);
      if (!used) throw invalidGrant("the refresh token is unknown, expired or revoked");
      // `>=`: with no grace at all, a reuse in the same millisecond is still a reuse.
      if (Date.now() - used.at >= this.graceSeconds * 1000 || used.client_id !== client.client_id) {
        await this.endGrant(used.sid, "refresh-reuse");
        throw invalidGrant("the refresh token was already used; the grant is revoked");
      }
      presented = used;
    }
    if (presented.client_id !== client.client_id) {
      // A refresh token shown by another client was leaked: end the grant.
      await this.endGrant(presented.sid, "refresh-other-client");
      throw invalidGrant("the refresh token was issued to another client");
    }

    const grant = await this.grants.getGrant(presented.sid);
    if (!grant || (await this.revocations.isGrantRevoked(presented.sid))) {
      throw invalidGrant("the grant behind this refresh token was revoked or has expired");
    }
    const access = this.checkAccess(grant.user);
    if (!access.allowed) {
      await this.endGrant(grant.sid, "user-not-allowed");
      throw invalidGrant(`the user is no longer allowed: ${access.reason}`);
    }

    const requestedScope = params.scope === undefined ? presented.scope : splitScope(params.scope);
    const extraScope = requestedScope.filter((s) => !presented.scope.includes(s));
    const extraResources = resources.filter((r) => !presented.resources.includes(r));
    if (extraScope.length || extraResources.length) {
      // A refused request spends nothing: the token taken above goes back unchanged.
      if (rotatedNow) await this.grants.releaseRefresh(token, presented);
      if (extraScope.length) throw invalidScope(`scope may only narrow on refresh: ${extraScope.join(" ")}`);
      throw invalidTarget(`resource not part of this grant: ${extraResources.join(" ")}`);
    }

    return this.issuer.issue({
      grantType: this.grantType,
      grant,
      scope: requestedScope,
      resources: resources.length ? resources : presented.resources,
      withRefreshToken: true,
      refreshScope: presented.scope,
      refreshResources: presented.resources,
    });
  }
}
