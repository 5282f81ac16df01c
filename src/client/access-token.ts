/**
 * Access tokens from the cache, refreshed at the token endpoint when they expire or the server
 * refused them. Used by `token`, `connect` and `logout`; never registers a client and never
 * wants a browser (only `login` does), so a stdio client gets a clear error instead.
 *
 * A refresh goes to the authorization server this URL's login is with, found again by
 * discovery; when the URL now names another one (SEP-2352), the old login is not offered to it.
 */
import {
  checkResourceAllowed,
  discoverOAuthServerInfo,
  OAuthError,
  OAuthErrorCode,
  type OAuthServerInfo,
  type OAuthTokens,
  refreshAuthorization,
  resourceUrlFromServerUrl,
} from "@modelcontextprotocol/client";
import type { CredentialStore, ServerEntry, StoredClient, StoredTokens } from "./credentials.js";
import { fetchNamingFailures, NetworkError } from "./network.js";
import { LoginRequiredError } from "./provider.js";

/** Refresh when the access token has less than this left, so it does not expire in flight. */
export const REFRESH_MARGIN_MS = 60_000;

/** `tokens` if its access token has more than `marginMs` left (or no stated expiry). */
function usable(tokens: StoredTokens | undefined, marginMs: number): StoredTokens | undefined {
  if (tokens && (tokens.expires_at === undefined || tokens.expires_at - Date.now() > marginMs)) return tokens;
  return undefined;
}

/**
 * The cached tokens for `serverUrl`, refreshed first when needed. Throws `LoginRequiredError`
 * when there is no login or the refresh is refused, `NetworkError` when the server is out of reach.
 */
export async function freshTokens(
  store: CredentialStore,
  serverUrl: string,
  marginMs = REFRESH_MARGIN_MS,
): Promise<StoredTokens> {
  const cached = store.get(serverUrl);
  const ready = usable(cached?.tokens, marginMs);
  if (ready) return ready;
  return refreshTokens(store, serverUrl, (tokens) => usable(tokens, marginMs) !== undefined);
}

/**
 * Refreshes the tokens of `serverUrl` now. Under the lock, and re-read inside it: another process
 * may have refreshed meanwhile (`stillGood` says whether what it finds will do), and a refresh
 * token presented twice ends the whole login at the gateway.
 */
export async function refreshTokens(
  store: CredentialStore,
  serverUrl: string,
  stillGood: (tokens: StoredTokens) => boolean = () => false,
): Promise<StoredTokens> {
  return store.exclusive(async () => {
    const entry = store.get(serverUrl);
    if (entry?.tokens && stillGood(entry.tokens)) return entry.tokens;
    if (!entry?.tokens) throw new LoginRequiredError(serverUrl, `not logged in to ${serverUrl}`);
    const refreshToken = entry.tokens.refresh_token;
    if (!refreshToken) {
      throw new LoginRequiredError(
        serverUrl,
        "the access token has expired or was refused, and there is no refresh token",
      );
    }
    const server = await discoverOAuthServerInfo(serverUrl, { fetchFn: fetchNamingFailures });
    const issuer = server.authorizationServerMetadata?.issuer ?? server.authorizationServerUrl;
    const loginIssuer = entry.issuer ?? entry.tokens.issuer;
    if (loginIssuer && loginIssuer !== issuer) {
      throw new LoginRequiredError(
        serverUrl,
        `the authorization server of ${serverUrl} is now ${issuer}, not ${loginIssuer} that this login is with`,
      );
    }
    const client = clientOf(store, entry, issuer);
    if (!client) throw new LoginRequiredError(serverUrl, `no client registration with ${issuer} is kept`);

    let tokens: OAuthTokens;
    try {
      tokens = await refreshAuthorization(server.authorizationServerUrl, {
        metadata: server.authorizationServerMetadata,
        clientInformation: client,
        refreshToken,
        resource: resourceOf(serverUrl, server),
        fetchFn: fetchNamingFailures,
      });
    } catch (err) {
      if (err instanceof NetworkError) throw err;
      if (err instanceof OAuthError && err.code === OAuthErrorCode.InvalidGrant) {
        // Dead for good: keep the registration, drop the tokens.
        await store.update(serverUrl, (e) => (e ? { ...e, tokens: undefined } : e));
        throw new LoginRequiredError(
          serverUrl,
          `the login was revoked or has expired at ${issuer} (invalid_grant)`,
        );
      }
      if (
        err instanceof OAuthError &&
        (err.code === OAuthErrorCode.InvalidClient || err.code === OAuthErrorCode.UnauthorizedClient)
      ) {
        throw new LoginRequiredError(serverUrl, `${issuer} no longer accepts this client (${err.code})`);
      }
      throw new LoginRequiredError(
        serverUrl,
        `refreshing the access token failed (${(err as Error).message})`,
      );
    }
    const { expires_in, ...rest } = tokens;
    const stored: StoredTokens = {
      ...rest,
      issuer,
      ...(entry.tokens.client_id && { client_id: entry.tokens.client_id }),
    };
    if (expires_in !== undefined) stored.expires_at = Date.now() + expires_in * 1000;
    await store.update(serverUrl, (e) => ({ ...e, issuer, tokens: stored }));
    return stored;
  });
}

/**
 * The registration `entry`'s tokens were issued to: the one they name (a device login's own, kept
 * with the URL), else the issuer's, else one from a version 1 file. Presenting a refresh token
 * with another client would end its grant at the gateway, so a named client that is gone is none.
 */
export function clientOf(
  store: CredentialStore,
  entry: ServerEntry,
  issuer: string,
): StoredClient | undefined {
  const candidates = [store.client(issuer), entry.client].filter((c): c is StoredClient => c !== undefined);
  const wanted = entry.tokens?.client_id;
  return wanted ? candidates.find((c) => c.client_id === wanted) : candidates[0];
}

/** RFC 8707 resource, as the login sent it: the metadata's `resource`, checked against the URL. */
export function resourceOf(serverUrl: string, server: OAuthServerInfo): string | undefined {
  const configured = server.resourceMetadata?.resource;
  if (!configured) return undefined;
  if (
    !checkResourceAllowed({
      requestedResource: resourceUrlFromServerUrl(serverUrl),
      configuredResource: configured,
    })
  ) {
    throw new Error(`the protected resource ${configured} does not match ${serverUrl}`);
  }
  return configured;
}
