/**
 * POST /device_authorization (RFC 8628 §3.1, §3.2): a client on a machine without a browser
 * asks for a device code to poll with and a user code for its person to type at /device.
 * The client authenticates as it does at /token (its registered method), must be registered
 * for the device grant, and asks for scope and resources as /authorize does.
 */
import type { Audit } from "../ops/audit.js";
import { type AuthorizeDeps, requestedAccess } from "./authorize.js";
import type { ClientAuthenticator } from "./client-auth.js";
import type { DeviceStore } from "./device-store.js";
import { OAuthError } from "./errors.js";
import { DEVICE_CODE_GRANT } from "./grants/device-code.js";
import { readParams } from "./params.js";

/** RFC 8628 §3.2. */
export interface DeviceAuthorizationResponse {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
}

export interface DeviceAuthorizationDeps {
  issuer: string;
  devices: DeviceStore;
  clients: ClientAuthenticator;
  access: Pick<AuthorizeDeps, "resources" | "scopesFor" | "knownScopes">;
  audit: Audit;
}

/** Where a person types the code: `{issuer}/device`. */
export function verificationUri(issuer: string): string {
  return `${issuer}/device`;
}

/** The page with the code filled in (RFC 8628 §3.3.1), for a link or a QR code. */
export function verificationUriComplete(issuer: string, userCode: string): string {
  return `${verificationUri(issuer)}?user_code=${encodeURIComponent(userCode)}`;
}

export class DeviceAuthorizationEndpoint {
  constructor(private readonly deps: DeviceAuthorizationDeps) {}

  async handle(
    body: Record<string, unknown> | undefined,
    authorization: string | undefined,
  ): Promise<DeviceAuthorizationResponse> {
    const { params, resources } = readParams(body);
    const client = await this.deps.clients.authenticate(authorization, params, "device_authorization");
    if (!client.grant_types.includes(DEVICE_CODE_GRANT)) {
      throw new OAuthError("unauthorized_client", "this client is not registered for the device_code grant");
    }
    const access = requestedAccess(params.scope, resources, this.deps.access);
    const issued = await this.deps.devices.create({ client_id: client.client_id, ...access });
    this.deps.audit.emit({ type: "device.requested", client_id: client.client_id, ...access });
    return {
      device_code: issued.deviceCode,
      user_code: issued.userCode,
      verification_uri: verificationUri(this.deps.issuer),
      verification_uri_complete: verificationUriComplete(this.deps.issuer, issued.userCode),
      expires_in: issued.expiresIn,
      interval: issued.interval,
    };
  }
}
