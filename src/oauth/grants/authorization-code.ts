/**
 * authorization_code (OAuth 2.1 §4.1.3): the code is single use and bound to the client,
 * the redirect URI, the PKCE challenge and the resources it was authorized for. A replayed
 * code revokes everything issued from it (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3).
 */
import { randomUUID } from "node:crypto";
import { invalidGrant, invalidRequest, invalidTarget } from "../errors.js";
import type { GrantStore } from "../grant-store.js";
import type { TokenIssuer, TokenResponse } from "../issuer.js";
import { verifierMatches } from "../pkce.js";
import type { EndGrant, GrantHandler, TokenRequest } from "./grant.js";

export class AuthorizationCodeGrant implements GrantHandler {
  readonly grantType = "authorization_code";

  constructor(
    private readonly grants: GrantStore,
    private readonly issuer: TokenIssuer,
    private readonly endGrant: EndGrant,
  ) {}

  async handle({ client, params, resources }: TokenRequest): Promise<TokenResponse> {
    const { code, code_verifier: verifier, redirect_uri: redirectUri } = params;
    if (!code) throw invalidRequest("code is required");
    if (!verifier) throw invalidRequest("code_verifier is required (PKCE)");
    if (!redirectUri) throw invalidRequest("redirect_uri is required");

    // Everything is checked before the code is spent, so a refused request leaves it usable.
    const stored = await this.grants.peekCode(code);
    if (!stored) return this.refuseSpentCode(code);
    if (stored.client_id !== client.client_id)
      throw invalidGrant("the authorization code was issued to another client");
    if (stored.redirect_uri !== redirectUri)
      throw invalidGrant("redirect_uri does not match the authorization request");
    if (!verifierMatches(verifier, stored.code_challenge))
      throw invalidGrant("code_verifier does not match the code challenge");
    const unknown = resources.filter((r) => !stored.resources.includes(r));
    if (unknown.length) throw invalidTarget(`resource not authorized for this code: ${unknown.join(" ")}`);

    // The grant (and its refresh family) is written before the code is claimed, and the claim is
    // the last write: a redemption that fails on the way (a store outage) leaves the code
    // unclaimed for the client's retry, and at worst an unreachable grant, never a spent code
    // without tokens. The claim marks the code with this grant's id in one step, so a replay on
    // any instance ends exactly what this redemption creates.
    const grant = {
      sid: randomUUID(),
      client_id: client.client_id,
      user: stored.user,
      scope: stored.scope,
      resources: stored.resources,
      created_at: Math.floor(Date.now() / 1000),
      auth_time: stored.auth_time,
      checked_at: stored.checked_at ?? stored.auth_time,
    };
    await this.grants.saveGrant(grant);
    const refreshToken = client.grant_types.includes("refresh_token")
      ? await this.grants.refresh.start(grant.sid)
      : undefined;
    if (!(await this.grants.claimCode(code, grant.sid))) {
      // Another redemption won the race: this grant was never handed out.
      await this.grants.deleteGrant(grant.sid);
      return this.refuseSpentCode(code);
    }
    return this.issuer.issue({
      grantType: this.grantType,
      grant,
      scope: grant.scope,
      resources: resources.length ? resources : grant.resources,
      refreshToken,
    });
  }

  /** A code that is not live: a replay ends what it produced; otherwise it is unknown. */
  private async refuseSpentCode(code: string): Promise<never> {
    const used = await this.grants.usedCode(code);
    if (used) {
      await this.endGrant(used.sid, "code-replay");
      throw invalidGrant("the authorization code was already used; tokens issued for it are revoked");
    }
    throw invalidGrant("the authorization code is unknown or expired");
  }
}
