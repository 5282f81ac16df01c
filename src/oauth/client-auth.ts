/**
 * Client authentication at the token, revocation and introspection endpoints:
 * `client_secret_basic`, `client_secret_post`, `private_key_jwt` (a signed assertion, RFC 7523),
 * or `none` for public clients (which are identified, not authenticated, and must then prove
 * PKCE or hold a refresh token).
 */

import { decodeJwt } from "jose";
import { secretMatches } from "../crypto/secrets.js";
import { type ClientAssertionVerifier, JWT_BEARER_ASSERTION } from "./client-assertion.js";
import { type ClientRecord, ClientStore, type TokenEndpointAuthMethod } from "./clients.js";
import { invalidClient, invalidRequest, OAuthError } from "./errors.js";

export interface PresentedCredentials {
  clientId?: string;
  clientSecret?: string;
  /** A `client_assertion` of type jwt-bearer (private_key_jwt). */
  assertion?: string;
  /** Whether the credentials came in an Authorization: Basic header (decides the 401 challenge). */
  basic: boolean;
}

/** Reads client credentials from the Authorization header and the form, refusing two methods at once. */
export function readCredentials(
  authorization: string | undefined,
  params: Record<string, string | undefined>,
): PresentedCredentials {
  const assertion = readAssertion(params);
  if (authorization?.toLowerCase().startsWith("basic ")) {
    if (params.client_secret !== undefined || assertion !== undefined) {
      throw invalidRequest("use only one client authentication method");
    }
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
  if (assertion !== undefined) {
    if (params.client_secret !== undefined) throw invalidRequest("use only one client authentication method");
    // RFC 7521 §4.2: client_id may be left out; the assertion's subject names the client.
    return { clientId: params.client_id ?? assertionSubject(assertion), assertion, basic: false };
  }
  return { clientId: params.client_id, clientSecret: params.client_secret, basic: false };
}

/** The `client_assertion` of a jwt-bearer pair, or undefined when the form has none. */
function readAssertion(params: Record<string, string | undefined>): string | undefined {
  const type = params.client_assertion_type;
  const assertion = params.client_assertion;
  if (type === undefined && assertion === undefined) return undefined;
  if (type === undefined || assertion === undefined) {
    throw invalidRequest("client_assertion and client_assertion_type go together");
  }
  if (type !== JWT_BEARER_ASSERTION) {
    throw invalidClient(`client_assertion_type must be ${JWT_BEARER_ASSERTION}`);
  }
  return assertion;
}

function assertionSubject(assertion: string): string | undefined {
  try {
    const sub = decodeJwt(assertion).sub;
    return typeof sub === "string" ? sub : undefined;
  } catch {
    throw invalidClient("client assertion: not a JWT");
  }
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
  if (creds.assertion !== undefined) return "private_key_jwt";
  return creds.clientSecret !== undefined ? "client_secret_post" : "none";
}

/** The endpoints a client authenticates at; an assertion may name the one it was made for. */
export type AuthenticatingEndpoint = "token" | "revoke" | "introspect" | "device_authorization";

export interface ClientAuthOptions {
  /** Refuse public clients (introspection). */
  requireConfidential?: boolean;
}

/**
 * Finds and authenticates the client of a request. A client authenticates with the method it
 * registered and no other (a `client_secret_basic` client may not switch to the form body, a
 * public client may not present a secret, a `private_key_jwt` client must sign), as RFC 7591 §2
 * makes the method part of the registration.
 */
export class ClientAuthenticator {
  constructor(
    private readonly lookup: (clientId: string) => Promise<ClientRecord | undefined>,
    private readonly assertions: ClientAssertionVerifier,
    private readonly issuer: string,
    /** Whether `lookup` of this client id is a request elsewhere (a client metadata document). */
    private readonly fetched: (clientId: string) => boolean = () => false,
  ) {}

  /**
   * Whether authenticating these credentials writes nothing and asks nothing outside the
   * gateway, so it may come before the abuse brakes' count (TokenEndpoint): no assertion (its
   * jti is recorded), no metadata document to fetch, credentials that parse. A store read of an
   * uncached client record may happen.
   */
  authenticatesLocally(
    authorization: string | undefined,
    params: Record<string, string | undefined>,
  ): boolean {
    let credentials: PresentedCredentials;
    try {
      credentials = readCredentials(authorization, params);
    } catch {
      return false;
    }
    const { clientId, assertion } = credentials;
    return assertion === undefined && clientId !== undefined && !this.fetched(clientId);
  }

  /** The client behind the request's credentials, or invalid_client (401). */
  async authenticate(
    authorization: string | undefined,
    params: Record<string, string | undefined>,
    endpoint: AuthenticatingEndpoint,
    options: ClientAuthOptions = {},
  ): Promise<ClientRecord> {
    const creds = readCredentials(authorization, params);
    const fail = (d: string) => (creds.basic ? basicFailure(d) : invalidClient(d));
    if (!creds.clientId) throw fail("client authentication failed: no client_id");
    const client = await this.lookup(creds.clientId);
    if (!client) throw fail("client authentication failed: unknown client");
    const method = presentedMethod(creds);
    if (method !== client.token_endpoint_auth_method) {
      throw fail(
        `client authentication failed: this client authenticates with ${client.token_endpoint_auth_method}, not ${method}`,
      );
    }
    if (method === "private_key_jwt") {
      await this.assertions.verify(client, creds.assertion as string, `${this.issuer}/${endpoint}`);
    } else if (ClientStore.usesSecret(client)) {
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
}
