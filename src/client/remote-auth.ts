/**
 * The SDK v2 transport's `AuthProvider` for `connect`: the cached access token before every
 * request (refreshed when near expiry), and a refresh when the server answers 401 (the
 * transport then retries once). When no refresh can help (the login was revoked, there is no
 * refresh token, the URL moved to another authorization server), `relogin` gets a new login
 * with a person at a browser. A plain `AuthProvider`, not an `OAuthClientProvider`, so the
 * transport never starts an authorization of its own: a 403 `insufficient_scope` surfaces as
 * `InsufficientScopeError` for the relay's step-up (step-up.ts).
 */
import type { AuthProvider } from "@modelcontextprotocol/client";
import { freshTokens, refreshTokens } from "./access-token.js";
import type { CredentialStore } from "./credentials.js";
import { LoginRequiredError } from "./provider.js";

export class StoredTokenAuth implements AuthProvider {
  private lastSent?: string;

  constructor(
    private readonly store: CredentialStore,
    private readonly serverUrl: string,
    private readonly relogin?: (why: LoginRequiredError) => Promise<void>,
  ) {}

  async token(): Promise<string> {
    this.lastSent = (await freshTokens(this.store, this.serverUrl)).access_token;
    return this.lastSent;
  }

  async onUnauthorized(): Promise<void> {
    // Unless another process (or request) has refreshed since this token went out.
    const refused = this.lastSent;
    try {
      await refreshTokens(this.store, this.serverUrl, (t) => t.access_token !== refused);
    } catch (err) {
      if (!(err instanceof LoginRequiredError) || !this.relogin) throw err;
      await this.relogin(err);
    }
  }
}
