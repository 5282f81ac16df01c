/**
 * A valid access token for a server from the cache, refreshed through the SDK's `auth()` when
 * it has expired or is about to. Used by `token` and by `connect` before each message.
 */
import { auth } from "@modelcontextprotocol/sdk/client/auth.js";
import type { CredentialStore, StoredTokens } from "./credentials.js";
import { CachedOAuthProvider, LoginRequiredError } from "./provider.js";

/** Refresh when the access token has less than this left, so it does not expire in flight. */
export const REFRESH_MARGIN_MS = 60_000;

/** `tokens` if its access token has more than `marginMs` left (or no stated expiry). */
function usable(tokens: StoredTokens | undefined, marginMs: number): StoredTokens | undefined {
  if (tokens && (tokens.expires_at === undefined || tokens.expires_at - Date.now() > marginMs)) return tokens;
  return undefined;
}

/**
 * The cached tokens for `serverUrl`, refreshed first when needed. Throws `LoginRequiredError`
 * when there is no login, or the refresh fails.
 */
export async function freshTokens(
  store: CredentialStore,
  serverUrl: string,
  marginMs = REFRESH_MARGIN_MS,
): Promise<StoredTokens> {
  const cached = store.get(serverUrl);
  const ready = usable(cached?.tokens, marginMs);
  if (ready) return ready;
  if (!cached?.tokens || !cached.client)
    throw new LoginRequiredError(serverUrl, `not logged in to ${serverUrl}`);
  // Under the lock, and re-read inside it: another process may have refreshed meanwhile, and a
  // refresh token presented twice ends the whole login at the gateway.
  return store.exclusive(async () => {
    const entry = store.get(serverUrl);
    const refreshed = usable(entry?.tokens, marginMs);
    if (refreshed) return refreshed;
    if (!entry?.tokens?.refresh_token) {
      throw new LoginRequiredError(serverUrl, "the access token has expired and there is no refresh token");
    }
    try {
      await auth(new CachedOAuthProvider(store, serverUrl), { serverUrl });
    } catch (err) {
      if (err instanceof LoginRequiredError) throw err;
      throw new LoginRequiredError(
        serverUrl,
        `refreshing the access token failed (${(err as Error).message})`,
      );
    }
    const tokens = usable(store.get(serverUrl)?.tokens, 0);
    if (!tokens) throw new LoginRequiredError(serverUrl, "the server returned no usable access token");
    return tokens;
  });
}
