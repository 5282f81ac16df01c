/**
 * `logout`: revoke the refresh token (RFC 7009; it ends the whole grant at the gateway, access
 * tokens included) or, without one, the access token; delete the local entry either way; then
 * delete the CLI's own registration at the server (RFC 7592 §2.3) when no other stored login
 * uses it.
 *
 * Registrations are shared per issuer (credentials.ts): every URL behind one authorization
 * server logs in with the same client. Deleting it while another URL still holds tokens would
 * end that login too (the server drops a deleted client's tokens), so the registration is kept
 * then, and the result says which logins keep it. A registration made by hand
 * (`login --client-id`) is never deleted: it is the person's, not the CLI's.
 */
import { clientOf } from "./access-token.js";
import type { CredentialStore, StoredClient } from "./credentials.js";
import { serverKey } from "./credentials.js";
import { revokeToken } from "./revoke.js";
import { deleteRegistration } from "./unregister.js";

/** What became of the registration the login used. */
export type RegistrationOutcome =
  /** Deleted at the server (204) and forgotten here. */
  | { state: "deleted" }
  /** The server no longer knew it (404): forgotten here. */
  | { state: "gone" }
  /** Kept, because these other stored logins use it. */
  | { state: "shared"; servers: string[] }
  /** Kept: registered by hand, or registered without a registration access token. */
  | { state: "kept"; reason: string }
  /** Kept: the server did not delete it. */
  | { state: "failed"; error: string }
  /** There was no registration to speak of. */
  | { state: "none" };

export interface LogoutResult {
  /** Whether there was a local entry. */
  removed: boolean;
  /** Whether a token was revoked at the server. */
  revoked: boolean;
  /** Why revocation failed, when it did (the entry is deleted anyway). */
  revokeError?: string;
  registration: RegistrationOutcome;
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
  // Under the lock, so a login starting meanwhile either is counted as a user of the
  // registration or finds it already gone and registers anew.
  return store.exclusive(async () => {
    const removed = await store.remove(url);
    const registration =
      removed && issuer ? await retireRegistration(store, issuer) : ({ state: "none" } as const);
    return { removed, revoked, revokeError, registration };
  });
}

/** Deletes the registration at `issuer` if nothing else stored uses it (caller holds the lock). */
async function retireRegistration(store: CredentialStore, issuer: string): Promise<RegistrationOutcome> {
  const client: StoredClient | undefined = store.client(issuer);
  if (!client) return { state: "none" };
  const others = store.serversWith(issuer);
  if (others.length) return { state: "shared", servers: others };
  if (client.pre_registered) return { state: "kept", reason: "it was registered by hand (--client-id)" };
  const { registration_access_token: token, registration_client_uri: uri } = client;
  if (!token || !uri) {
    return { state: "kept", reason: "no registration access token is stored for it" };
  }
  try {
    const outcome = await deleteRegistration(uri, token);
    await store.updateClient(issuer, () => undefined);
    return { state: outcome };
  } catch (err) {
    return { state: "failed", error: (err as Error).message };
  }
}
