/**
 * refresh_token (OAuth 2.1 §4.3, RFC 9700 §4.14.2): rotated on every use, one live refresh
 * token per grant. Its immediate predecessor, repeated inside the grace window (two tabs or
 * processes refreshing at once, a retry after a lost answer), is answered with the same
 * successor and a fresh access token, never a second chain. Any other use of a rotated token
 * means it was copied: the grant is revoked. Scope and audience may only narrow; the identity
 * provider's allowlist is checked again, and at most every `idp.recheck` the provider itself is
 * asked whether the person may still sign in (liveness.ts): one it no longer vouches for loses
 * the grant (and everything else they had); one it cannot be asked about, past the outage
 * bound, gets 503 `temporarily_unavailable` and keeps the grant.
 *
 * Steps: read what the token is, its grant and the grant's revocation mark (at once), validate
 * the request against the grant, then rotate and renew the grant in one atomic store operation.
 * A request refused before the rotation spends nothing; the rotation is the only store write
 * (but for owner index entries, about once per refresh lifetime, written before it), so a failure
 * (store unavailable) leaves the token and the grant as they were. Where the store can (Redis but
 * Cluster), a plain refresh is all of that in one store step, which declines anything else with
 * nothing changed and hands back what it read for the steps above (inOneStep).
 */
import type { AccessDecision, UserIdentity } from "../../idp/idp.js";
import type { Revocations } from "../../tokens/revocations.js";
import { invalidGrant, invalidRequest, invalidScope, invalidTarget, OAuthError } from "../errors.js";
import type { Grant, GrantStore } from "../grant-store.js";
import type { TokenIssuer, TokenResponse } from "../issuer.js";
import type { Confirmation } from "../liveness.js";
import type { PresentedRefreshToken } from "../refresh-tokens.js";
import {
  type EndGrant,
  type GrantHandler,
  splitScope,
  type TokenBrakes,
  type TokenRequest,
} from "./grant.js";

const REUSED = "the refresh token was already used; the grant is revoked";

/** What a refresh reads before deciding: the token's standing, its grant, the grant's revocation mark. */
type RefreshReads = [PresentedRefreshToken | undefined, Grant | undefined, boolean] | undefined;
const UNKNOWN = "the refresh token is unknown, expired or revoked";

export class RefreshTokenGrant implements GrantHandler {
  readonly grantType = "refresh_token";

  constructor(
    private readonly grants: GrantStore,
    private readonly issuer: TokenIssuer,
    private readonly revocations: Revocations,
    private readonly endGrant: EndGrant,
    private readonly idp: {
      /** The identity provider's allowlist as configured now. */
      checkAccess: (user: UserIdentity) => AccessDecision;
      /** The liveness re-check (liveness.ts), given when the provider last vouched for the user. */
      confirm: (user: UserIdentity, checkedAt: number) => Promise<Confirmation>;
      /** The earliest `checkedAt` that `confirm` takes as it is, without asking the provider. */
      freshSince: () => number;
    },
  ) {}

  /**
   * The token names its grant, so the family, the grant and its revocation mark are read at
   * once, and with the client's record (token.ts): one round trip on Redis. Reads only. Not
   * where the store refreshes in one step: that step reads for itself, after the brakes and
   * client authentication (handle).
   */
  prepare(params: Record<string, string | undefined>): Promise<RefreshReads> | undefined {
    if (this.grants.refresh.inOneStep) return undefined;
    return this.read(params);
  }

  /** On a store that refreshes in one step, the brakes are counted inside it (TokenBrakes). */
  countsBrakes(): boolean {
    return this.grants.refresh.inOneStep;
  }

  private read(params: Record<string, string | undefined>): Promise<RefreshReads> {
    const token = params.refresh_token;
    const sid = token === undefined ? undefined : this.grants.refresh.grantOf(token);
    if (token === undefined || sid === undefined) return Promise.resolve(undefined);
    return Promise.all([
      this.grants.refresh.inspect(token),
      this.grants.getGrant(sid),
      this.revocations.isGrantRevoked(sid),
    ]);
  }

  async handle({ client, params, resources, prepared, brakes }: TokenRequest): Promise<TokenResponse> {
    const token = params.refresh_token;
    if (!token) throw invalidRequest("refresh_token is required");
    let reads: RefreshReads;
    if (prepared === undefined && this.grants.refresh.inOneStep) {
      const step = await this.inOneStep(token, client.client_id, params, resources, brakes);
      if (step.outcome === "issued") return step.response;
      reads = step.reads;
    } else {
      reads = await ((prepared as Promise<RefreshReads> | undefined) ?? this.read(params));
    }
    if (!reads) throw invalidGrant(UNKNOWN);
    const [presented, stored, revoked] = reads;
    if (!presented) throw invalidGrant(UNKNOWN);
    const grant = await this.liveGrant(presented, client.client_id, revoked ? undefined : stored);
    const scope = params.scope === undefined ? grant.scope : splitScope(params.scope);
    const extraScope = scope.filter((s) => !grant.scope.includes(s));
    if (extraScope.length) throw invalidScope(`scope may only narrow on refresh: ${extraScope.join(" ")}`);
    const extraResources = resources.filter((r) => !grant.resources.includes(r));
    if (extraResources.length)
      throw invalidTarget(`resource not part of this grant: ${extraResources.join(" ")}`);

    // Sliding lifetime: the grant, renewed in the rotation's own atomic step.
    const rotation = await this.grants.rotateRefresh(grant, presented);
    switch (rotation.outcome) {
      case "rotated":
      case "replayed":
        return this.issuer.issue({
          grantType: this.grantType,
          grant,
          scope,
          resources: resources.length ? resources : grant.resources,
          refreshToken: rotation.token,
        });
      case "superseded":
        throw invalidGrant("the refresh token was just rotated; use its successor");
      case "reused":
        await this.endGrant(grant.sid, "refresh-reuse");
        throw invalidGrant(REUSED);
      case "unknown":
        throw invalidGrant(UNKNOWN);
    }
  }

  /**
   * A plain refresh as one store step (RefreshTokens.refreshInOneStep): the store checks what
   * it holds (the token is current, the grant live and this client's, no liveness re-check or
   * index renewal due, scope and audience within the grant) and rotates. The allowlist, which
   * is configuration, is checked here once the grant is known: a user it no longer lets in
   * loses the grant, the rotation included, as in the two-step path. Anything the step
   * declines comes back as the reads the two-step path decides on.
   */
  private async inOneStep(
    token: string,
    clientId: string,
    params: Record<string, string | undefined>,
    resources: string[],
    /** Given when this step is to count them (TokenEndpoint); not reached, the endpoint counts. */
    brakes: TokenBrakes | undefined,
  ): Promise<{ outcome: "issued"; response: TokenResponse } | { outcome: "declined"; reads: RefreshReads }> {
    const sid = this.grants.refresh.grantOf(token);
    // Not shaped like a token: no step is sent, so the brakes stay the endpoint's to count.
    if (sid === undefined || !this.grants.refresh.wellFormed(token))
      return { outcome: "declined", reads: undefined };
    const scope = params.scope === undefined ? undefined : splitScope(params.scope);
    const count = brakes?.forStep();
    const step = await this.grants.refreshInOneStep(sid, token, {
      revocation: this.revocations.grantMark(sid),
      clientId,
      checkedSince: this.idp.freshSince(),
      ...(scope ? { scope } : {}),
      resources,
      ...(count ? { brakes: { ns: count.ns, counters: count.counters } } : {}),
    });
    if (step.outcome === "braked") {
      count?.verdict(step.counts);
      throw new Error("the refresh step refused a count its brakes admit");
    }
    if (step.outcome === "unknown") return { outcome: "declined", reads: undefined };
    if (step.outcome === "declined") {
      const grant = step.grant as Grant | undefined;
      return { outcome: "declined", reads: [step.presented, grant, step.revoked] };
    }
    const grant = step.grant as unknown as Grant;
    const access = this.idp.checkAccess(grant.user);
    if (!access.allowed) {
      await this.endGrant(grant.sid, "user-not-allowed");
      throw invalidGrant(`the user is no longer allowed: ${access.reason}`);
    }
    const response = await this.issuer.issue({
      grantType: this.grantType,
      grant,
      scope: scope ?? grant.scope,
      resources: resources.length ? resources : grant.resources,
      refreshToken: step.token,
    });
    return { outcome: "issued", response };
  }

  /**
   * The grant a presented token may refresh, or the refusal: a token shown by another client,
   * or one already rotated out, was copied and ends the grant.
   */
  private async liveGrant(
    presented: PresentedRefreshToken,
    clientId: string,
    /** The grant as stored, undefined when it is gone or marked revoked. */
    grant: Grant | undefined,
  ): Promise<Grant> {
    if (!grant) {
      throw invalidGrant("the grant behind this refresh token was revoked or has expired");
    }
    if (grant.client_id !== clientId) {
      await this.endGrant(grant.sid, "refresh-other-client");
      throw invalidGrant("the refresh token was issued to another client");
    }
    // Older than the predecessor: reuse whatever else happens, no rotation can change that.
    if (presented.standing === "rotated") {
      await this.endGrant(grant.sid, "refresh-reuse");
      throw invalidGrant(REUSED);
    }
    const confirmed = await this.idp.confirm(grant.user, grant.checked_at ?? grant.auth_time);
    if (confirmed.outcome === "ended")
      throw invalidGrant(`the user is no longer allowed: ${confirmed.reason}`);
    if (confirmed.outcome === "unavailable") {
      throw new OAuthError(
        "temporarily_unavailable",
        `the identity provider cannot be asked about the user right now: ${confirmed.reason}`,
        { headers: { "retry-after": String(confirmed.retryAfterSeconds) } },
      );
    }
    // The identity as the provider gave it now (groups re-read) goes into the new tokens.
    const current: Grant = { ...grant, user: confirmed.user, checked_at: confirmed.checkedAt };
    const access = this.idp.checkAccess(current.user);
    if (!access.allowed) {
      await this.endGrant(grant.sid, "user-not-allowed");
      throw invalidGrant(`the user is no longer allowed: ${access.reason}`);
    }
    return current;
  }
}
