/**
 * GET /authorize (OAuth 2.1 §4.1.1): validates the request in the order that decides where an
 * error may go. Until the client and its redirect URI are verified, errors are shown to the
 * person (never redirected to an unverified URI); after that they go back to the client with
 * `state` and `iss` (RFC 9207).
 */
import type { ResourceIndex } from "../config/resources.js";
import { StoreUnavailableError } from "../store/errors.js";
import type { ClientRecord } from "./clients.js";
import { OAuthError } from "./errors.js";
import { splitScope } from "./grants/grant.js";
import { readParams } from "./params.js";
import { isValidChallenge } from "./pkce.js";
import { redirectUriMatches } from "./redirect-uri.js";

/**
 * Not a resource's scope but a client's wish for a refresh token (OIDC; MCP 2026-07-28,
 * SEP-2207). The metadata lists it, so clients that add it when it is listed do; it is never in
 * protected resource metadata or a challenge, and never granted as a scope. Refresh tokens do
 * not depend on it: a client registered for the refresh_token grant gets one with every code it
 * redeems (clients that never send it, like most MCP clients, keep working), and a client not
 * registered for that grant gets none, whether it asks for offline_access or not.
 */
export const OFFLINE_ACCESS = "offline_access";

/** A validated authorization request, waiting for login and consent. */
export interface AuthorizationRequest {
  client_id: string;
  redirect_uri: string;
  state?: string;
  code_challenge: string;
  scope: string[];
  resources: string[];
}

/** An error to show to the person: the client or redirect URI could not be trusted. */
export class AuthorizePageError extends Error {
  override readonly name = "AuthorizePageError";
  constructor(
    readonly title: string,
    readonly detail: string,
  ) {
    super(detail);
  }
}

/** An error to send back to the verified redirect URI. */
export class AuthorizeRedirectError extends Error {
  override readonly name = "AuthorizeRedirectError";
  constructor(
    readonly error: OAuthError,
    readonly redirectUri: string,
    readonly state: string | undefined,
  ) {
    super(error.message);
  }
}

export interface AuthorizeDeps {
  lookupClient: (clientId: string) => Promise<ClientRecord | undefined>;
  resources: ResourceIndex;
  /** Scopes each service requires; what a client gets when it asks for none. */
  scopesFor: (resources: string[]) => string[];
  /** Every scope this gateway knows; others are dropped from requests (RFC 6749 §3.3). */
  knownScopes: Set<string>;
}

export async function validateAuthorizationRequest(
  query: Record<string, unknown> | undefined,
  deps: AuthorizeDeps,
): Promise<{ request: AuthorizationRequest; client: ClientRecord }> {
  let parsed: ReturnType<typeof readParams>;
  try {
    parsed = readParams(query);
  } catch (err) {
    throw new AuthorizePageError(
      "Invalid authorization request",
      (err as Error).message.replace(/^\w+: /, ""),
    );
  }
  const { params } = parsed;
  const clientId = params.client_id;
  if (!clientId)
    throw new AuthorizePageError("Invalid authorization request", "The request has no client_id.");
  let client: ClientRecord | undefined;
  try {
    client = await deps.lookupClient(clientId);
  } catch (err) {
    // An outage is not an unknown application: the subtree answers it with a 503 page.
    if (err instanceof StoreUnavailableError) throw err;
    const reason =
      err instanceof OAuthError ? err.description : "The application's registration could not be read.";
    throw new AuthorizePageError("Unknown application", reason);
  }
  if (!client) {
    throw new AuthorizePageError(
      "Unknown application",
      "This application is not registered with the gateway, or its registration has expired.",
    );
  }
  const redirectUri = params.redirect_uri;
  if (!redirectUri)
    throw new AuthorizePageError("Invalid authorization request", "The request has no redirect_uri.");
  if (!redirectUriMatches(client.redirect_uris, redirectUri)) {
    throw new AuthorizePageError(
      "Redirect address not registered",
      `The application asked to return to ${redirectUri}, which is not one of its registered redirect URIs.`,
    );
  }

  const state = params.state;
  const fail = (code: ConstructorParameters<typeof OAuthError>[0], description: string) =>
    new AuthorizeRedirectError(new OAuthError(code, description), redirectUri, state);

  if (params.response_type !== "code") throw fail("unsupported_response_type", "response_type must be code");
  if (params.request !== undefined || params.request_uri !== undefined) {
    throw fail("invalid_request", "request objects are not supported");
  }
  const challenge = params.code_challenge;
  if (!challenge) throw fail("invalid_request", "code_challenge is required (PKCE with S256)");
  if (params.code_challenge_method !== "S256") {
    throw fail("invalid_request", "code_challenge_method must be S256");
  }
  if (!isValidChallenge(challenge))
    throw fail("invalid_request", "code_challenge is not a valid S256 challenge");

  let access: RequestedAccess;
  try {
    access = requestedAccess(params.scope, parsed.resources, deps);
  } catch (err) {
    if (err instanceof OAuthError) throw new AuthorizeRedirectError(err, redirectUri, state);
    throw err;
  }
  const { scope, resources } = access;

  return {
    client,
    request: {
      client_id: client.client_id,
      redirect_uri: redirectUri,
      state,
      code_challenge: challenge,
      scope,
      resources,
    },
  };
}

export interface RequestedAccess {
  scope: string[];
  resources: string[];
}

/**
 * What a request may be granted, the same for /authorize and /device_authorization: its
 * resources, each one this gateway protects (else invalid_target, RFC 8707 §2), and the scopes
 * it asks for that the gateway knows (others are dropped, RFC 6749 §3.3), or, asking for none,
 * the resources' own.
 */
export function requestedAccess(
  scopeParameter: string | undefined,
  resources: string[],
  deps: Pick<AuthorizeDeps, "resources" | "scopesFor" | "knownScopes">,
): RequestedAccess {
  const unknown = resources.filter((r) => !deps.resources.isKnown(r));
  if (unknown.length) throw new OAuthError("invalid_target", `unknown resource: ${unknown.join(" ")}`);
  // A request for offline_access alone asks for no resource scope: it gets the resources' own.
  const asked = splitScope(scopeParameter).filter((s) => s !== OFFLINE_ACCESS);
  const requested = asked.length ? asked : deps.scopesFor(resources);
  return { scope: requested.filter((s) => deps.knownScopes.has(s)), resources };
}

/** The redirect carrying an authorization response or error, with `iss` (RFC 9207). */
export function authorizationResponseUrl(
  redirectUri: string,
  issuer: string,
  values: Record<string, string | undefined>,
): string {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(values)) if (v !== undefined) url.searchParams.set(k, v);
  url.searchParams.set("iss", issuer);
  return url.toString();
}
