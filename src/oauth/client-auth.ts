/**
 * Client authentication at the token, revocation and introspection endpoints:
 * `client_secret_basic`, `client_secret_post`, or `none` for public clients (which are
 * identified, not authenticated, and must then prove PKCE or hold a refresh token).
 */

import { secretMatches } from "../crypto/secrets.js";
import { type ClientRecord, ClientStore, type TokenEndpointAuthMethod } from "./clients.js";
import { invalidClient, invalidRequest, OAuthError } from "./errors.js";

export interface PresentedCredentials {
  clientId?: string;
  clientSecret?: string;
  /** Whether the credentials came in an Authorization: Basic header (decides the 401 challenge). */
  basic: boolean;
}

/** Reads client credentials from the Authorization header and the form, refusing two methods at once. */
export function readCredentials(
  authorization: string | undefined,
  params: Record<string, string | undefined>,
): PresentedCredentials {
  if (authorization?.toLowerCase().startsWith("basic ")) {
    if (params.client_secret !== undefined) throw invalidRequest("use only one client authentication method");
    const decoded = Buffer.from(authorization.slice(6).trim(), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) throw basicFailure("malformed Basic credentials");
    // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    let clientId: string;
    let clientSecret: string;
    try {
      clientId = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, " "));
      clientSecret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, " "));
    } catch {
      throw basicFailure("malformed Basic credentials");
    }
    if (params.client_id !== undefined && params.client_id !== clientId) {
      throw invalidRequest("client_id in the body differs from the one in the Authorization header");
    }
    return { clientId, clientSecret, basic: true };
  }
  return { clientId: params.client_id, clientSecret: params.client_secret, basic: false };
}

/** RFC 6749 §5.2: a failed Basic authentication answers 401 with the Basic challenge. */
function basicFailure(description: string): OAuthError {
  return new OAuthError("invalid_client", description, {
    headers: { "WWW-Authenticate": 'Basic realm="mcp-oauth-gateway", charset="UTF-8"' },
  });
}

/** The method the credentials were presented with (RFC 7591 §2 names). */
function presentedMethod(creds: PresentedCredentials): TokenEndpointAuthMethod {
  if (creds.basic) return "client_secret_basic";
  return creds.clientSecret !== undefined ? "client_secret_post" : "none";
}

/**
 * The client behind the credentials, or invalid_client (401). A client authenticates with the
 * method it registered and no other (a `client_secret_basic` client may not switch to the form
 * body, a public client may not present a secret), as RFC 7591 §2 makes the method part of the
 * registration.
 */
export async function authenticateClient(
  creds: PresentedCredentials,
  lookup: (clientId: string) => Promise<ClientRecord | undefined>,
  options: { requireConfidential?: boolean } = {},
): Promise<ClientRecord> {
  const fail = (d: string) => (creds.basic ? basicFailure(d) : invalidClient(d));
  if (!creds.clientId) throw fail("client authentication failed: no client_id");
  const client = await lookup(creds.clientId);
  if (!client) throw fail("client authentication failed: unknown client");
  const method = presentedMethod(creds);
  if (method !== client.token_endpoint_auth_method) {
    throw fail(
      `client authentication failed: this client authenticates with ${client.token_endpoint_auth_method}, not ${method}`,
    );
  }
  if (ClientStore.isConfidential(client)) {
    if (
      !creds.clientSecret ||
      !client.client_secret_hash ||
      !secretMatches(creds.clientSecret, client.client_secret_hash)
    ) {
      throw fail("client authentication failed");
    }
  } else if (options.requireConfidential) {
    throw fail("this endpoint needs an authenticated (confidential) client");
  }
  return client;
}
