/**
 * urn:ietf:params:oauth:grant-type:device_code (RFC 8628 §3.4, §3.5): the device polls with its
 * device code until its person has answered at /device. While nobody has, the answer is
 * `authorization_pending`, or `slow_down` to a device polling sooner than its interval (which
 * then grows by 5 s); after a denial `access_denied`; after the codes' lifetime `expired_token`.
 * An approved code is redeemed once, for tokens like the code grant's; a second redemption
 * ends the grant the first one produced, as a replayed authorization code does.
 */
import { randomUUID } from "node:crypto";
import type { DeviceStore, FoundDevice } from "../device-store.js";
import { invalidGrant, invalidRequest, invalidTarget, OAuthError } from "../errors.js";
import type { Grant, GrantStore } from "../grant-store.js";
import type { TokenIssuer, TokenResponse } from "../issuer.js";
import type { EndGrant, GrantHandler, TokenRequest } from "./grant.js";

export const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

export class DeviceCodeGrant implements GrantHandler {
  readonly grantType = DEVICE_CODE_GRANT;

  constructor(
    private readonly devices: DeviceStore,
    private readonly grants: GrantStore,
    private readonly issuer: TokenIssuer,
    private readonly endGrant: EndGrant,
  ) {}

  async handle({ client, params, resources }: TokenRequest): Promise<TokenResponse> {
    const deviceCode = params.device_code;
    if (!deviceCode) throw invalidRequest("device_code is required");
    const found = await this.devices.get(deviceCode);
    if (!found) return this.refuseSpentCode(deviceCode);
    const { request } = found;
    if (request.client_id !== client.client_id)
      throw invalidGrant("the device code was issued to another client");
    if (this.devices.expired(request))
      throw new OAuthError("expired_token", "the device code has expired; start a new device authorization");

    const decision = await this.devices.decision(found.key);
    if (!decision) return this.keepWaiting(found);
    if (!decision.approved) throw new OAuthError("access_denied", "the user denied the request");

    const unknown = resources.filter((r) => !request.resources.includes(r));
    if (unknown.length)
      throw invalidTarget(`resource not authorized for this device code: ${unknown.join(" ")}`);

    // As the code grant: the grant and its refresh family are written first and the claim is the
    // last write, so a redemption that fails on the way leaves the device code for the device's
    // next poll, and one that loses the claim to a concurrent redemption removes its own grant.
    const grant: Grant = {
      sid: randomUUID(),
      client_id: client.client_id,
      user: decision.user,
      scope: request.scope,
      resources: request.resources,
      created_at: Math.floor(Date.now() / 1000),
      auth_time: decision.auth_time,
    };
    await this.grants.saveGrant(grant);
    const refreshToken = client.grant_types.includes("refresh_token")
      ? await this.grants.refresh.start(grant.sid)
      : undefined;
    if (!(await this.devices.claim(found.key, grant.sid))) {
      await this.grants.deleteGrant(grant.sid);
      return this.refuseSpentCode(deviceCode);
    }
    return this.issuer.issue({
      grantType: this.grantType,
      grant,
      scope: grant.scope,
      resources: resources.length ? resources : grant.resources,
      refreshToken,
    });
  }

  /** No answer yet: pending, or slow_down (and a longer interval) for a device that polls too often. */
  private async keepWaiting(found: FoundDevice): Promise<never> {
    const pace = await this.devices.poll(found.key);
    if (pace.tooFast)
      throw new OAuthError("slow_down", `polling too often: wait ${pace.interval} s between requests`);
    throw new OAuthError("authorization_pending", "the user has not answered yet");
  }

  /** A device code that names no request: a redeemed one ends what it produced; otherwise unknown. */
  private async refuseSpentCode(deviceCode: string): Promise<never> {
    const used = await this.devices.used(deviceCode);
    if (used) {
      await this.endGrant(used.sid, "device-code-replay");
      throw invalidGrant("the device code was already used; tokens issued for it are revoked");
    }
    throw invalidGrant("the device code is unknown or expired");
  }
}
