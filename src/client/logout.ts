/**
 * `logout`: revoke the refresh token (which ends the whole grant at the gateway, access tokens
 * included) or, without one, the access token; then delete the local entry either way. The
 * registration stays under its issuer: other URLs of that server may use it.
 */
import { clientOf } from "./access-token.js";
import type { CredentialStore } from "./credentials.js";
import { serverKey } from "./credentials.js";
import { revokeToken } from "./revoke.js";

export interface LogoutResult {
  /** Whether there was a local entry. */
  removed: boolean;
  /** Whether a token was revoked at the server. */
  revoked: boolean;
  /** Why revocation failed, when it did (the entry is deleted anyway). */
  revokeError?: string;
}

/** Logs out of `serverUrl`. */
export async function logout(store: CredentialStore, serverUrl: string): Promise<LogoutResult> {
  const url = serverKey(serverUrl);
  const entry = store.get(url);
  const tokens = entry?.tokens;
  const issuer = entry?.issuer ?? tokens?.issuer;
  const client = entry && (issuer ? clientOf(store, entry, issuer) : entry.client);
  let revoked = false;
  let revokeError: string | undefined;
  if (client && tokens) {
    const [token, hint] = tokens.refresh_token
      ? ([tokens.refresh_token, "refresh_token"] as const)
      : ([tokens.access_token, "access_token"] as const);
    try {
      await revokeToken(url, client, token, hint);
      revoked = true;
    } catch (err) {
      revokeError = (err as Error).message;
    }
  }
  const removed = await store.remove(url);
  return { removed, revoked, revokeError };
}
