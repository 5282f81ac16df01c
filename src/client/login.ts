/**
 * `login`: the authorization code flow of a native app (RFC 8252) run by the SDK v2 `auth()`.
 *
 * 1. Check that the URL is an OAuth-protected MCP server at all (server-check.ts), before
 *    anything is registered or a browser opened.
 * 2. Discover its authorization server (RFC 9728, RFC 8414); a client registered by hand
 *    (`--client-id`) is filed under that issuer, else the SDK registers one there (RFC 7591,
 *    `application_type: native`) unless the file already holds one for that issuer.
 * 3. PKCE, the browser round trip to a loopback receiver, which refuses a response whose
 *    RFC 9207 `iss` is not the issuer exactly (or is missing where the server promises one)
 *    before reading anything else from it; then the code exchange.
 */
import { randomBytes } from "node:crypto";
import {
  type AuthorizationServerMetadata,
  auth,
  InsecureTokenEndpointError,
  IssuerMismatchError,
  OAuthError,
  RegistrationRejectedError,
  validateAuthorizationResponseIssuer,
} from "@modelcontextprotocol/client";
import { decodeJwt } from "jose";
import { type CredentialStore, type ServerEntry, serverKey } from "./credentials.js";
import { startLoopbackReceiver } from "./loopback.js";
import { bodyExcerpt, fetchNamingFailures } from "./network.js";
import { LoginProvider } from "./provider.js";
import { revokeToken } from "./revoke.js";
import { discoverLoginServer } from "./server-check.js";

export interface LoginOptions {
  store: CredentialStore;
  /** How long to wait for the browser to come back. */
  timeoutMs: number;
  /** Shows the authorization URL to the person (print it, open a browser). */
  onAuthorizationUrl(url: URL): void;
  /** Scopes to ask for (default: what the server's challenge or metadata names). */
  scope?: string;
  /** A client registered by hand at the authorization server, used instead of registering one. */
  client?: { clientId: string; clientSecret?: string };
}

export interface LoginResult {
  /** The normalised server URL the tokens are cached under. */
  serverUrl: string;
  /** The issuer of the authorization server the login is with. */
  issuer: string;
  /** `preferred_username` from the access token, when it is a JWT that has one. */
  username?: string;
  scope?: string;
}

/** Runs the whole login for `serverUrl`; resolves once tokens are stored. */
export async function login(serverUrl: string, options: LoginOptions): Promise<LoginResult> {
  const url = serverKey(serverUrl);
  const { store } = options;
  const { challenge, server, metadata, issuer } = await discoverLoginServer(url);
  if (options.client) {
    const { clientId, clientSecret } = options.client;
    await store.updateClient(issuer, () => ({
      client_id: clientId,
      ...(clientSecret ? { client_secret: clientSecret } : { token_endpoint_auth_method: "none" }),
      issuer,
      pre_registered: true,
    }));
  }
  const previous = store.get(url);
  const state = randomBytes(24).toString("base64url");
  const receiver = await startLoopbackReceiver({
    state,
    timeoutMs: options.timeoutMs,
    checkResponse: (params) => checkIssuer(params.get("iss") ?? undefined, metadata),
  });
  const provider = new LoginProvider(
    store,
    url,
    {
      redirectUrl: receiver.redirectUrl,
      state,
      redirect: (authorizationUrl) => options.onAuthorizationUrl(authorizationUrl),
    },
    {
      authorizationServerUrl: server.authorizationServerUrl,
      authorizationServerMetadata: metadata,
      resourceMetadata: server.resourceMetadata,
      resourceMetadataUrl: challenge.resourceMetadataUrl?.href,
    },
  );
  try {
    const scope = options.scope ?? challenge.scope;
    const started = await auth(provider, {
      serverUrl: url,
      scope,
      fetchFn: provider.observing(fetchNamingFailures),
    });
    if (started !== "REDIRECT") throw new Error("the authorization server did not ask for a browser login");
    const response = await receiver.result;
    await auth(provider, {
      serverUrl: url,
      authorizationCode: response.code,
      iss: response.iss,
      fetchFn: fetchNamingFailures,
    });
  } catch (err) {
    throw explain(err, metadata);
  } finally {
    await receiver.close();
  }
  const tokens = store.get(url)?.tokens;
  if (!tokens) throw new Error("the code exchange stored no tokens");
  await retire(url, previous, issuer, store, tokens.refresh_token);
  return { serverUrl: url, issuer, username: usernameOf(tokens.access_token), scope: tokens.scope };
}

/**
 * RFC 9207 §2.4: simple string comparison with the issuer of the metadata (no normalisation:
 * a trailing slash or another case is another string); a server that advertises the parameter
 * must send it. The received value is not shown: in a mix-up it is the attacker's text.
 */
function checkIssuer(iss: string | undefined, metadata: AuthorizationServerMetadata | undefined): void {
  try {
    validateAuthorizationResponseIssuer({
      iss,
      expectedIssuer: metadata?.issuer,
      issParameterSupported: metadata?.authorization_response_iss_parameter_supported === true,
    });
  } catch (err) {
    if (!(err instanceof IssuerMismatchError)) throw err;
    throw new Error(
      iss === undefined
        ? `the authorization response carried no iss, though ${metadata?.issuer} says it always sends one: refusing it (RFC 9207)`
        : `the authorization response carried an iss that is not exactly ${metadata?.issuer}: refusing it, it may come from another server (RFC 9207)`,
    );
  }
}

/** The SDK's errors in the words of this CLI. */
function explain(err: unknown, metadata: AuthorizationServerMetadata | undefined): unknown {
  if (err instanceof IssuerMismatchError) {
    return err.kind === "metadata"
      ? new Error(
          `the authorization server metadata names the issuer ${err.received}, not ${err.expected} (RFC 8414 §3.3)`,
        )
      : new Error(
          `the authorization response does not come from ${metadata?.issuer}: refusing it (RFC 9207)`,
        );
  }
  if (err instanceof RegistrationRejectedError) {
    const excerpt = bodyExcerpt(err.body);
    return new Error(
      `the authorization server refused to register this client (HTTP ${err.status}${excerpt ? `: ${excerpt}` : ""})`,
    );
  }
  if (err instanceof InsecureTokenEndpointError) {
    return new Error(`refusing to send credentials to ${err.tokenEndpoint}: not https (and not loopback)`);
  }
  if (err instanceof OAuthError) {
    return new Error(
      `the authorization server refused: ${err.code}${err.message && err.message !== err.code ? `: ${err.message}` : ""}`,
    );
  }
  return err;
}

/** The login this one replaces ends at the server too, best effort (same server only). */
async function retire(
  serverUrl: string,
  previous: ServerEntry | undefined,
  issuer: string,
  store: CredentialStore,
  current: string | undefined,
): Promise<void> {
  const old = previous?.tokens?.refresh_token;
  const previousIssuer = previous?.issuer ?? previous?.tokens?.issuer;
  if (!old || old === current || (previousIssuer && previousIssuer !== issuer)) return;
  const client = store.client(issuer) ?? previous?.client;
  if (!client) return;
  await revokeToken(serverUrl, client, old, "refresh_token").catch(() => undefined);
}

function usernameOf(accessToken: string): string | undefined {
  try {
    const claims = decodeJwt(accessToken);
    return typeof claims.preferred_username === "string" ? claims.preferred_username : claims.sub;
  } catch {
    return undefined; // An opaque token: nothing to read.
  }
}
