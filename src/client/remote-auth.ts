/**
 * The SDK v2 transport's `AuthProvider` for `connect`: the cached access token before every
 * request (refreshed when near expiry), and a refresh when the server answers 401 (the
 * transport then retries once). A plain `AuthProvider`, not an `OAuthClientProvider`, so the
 * transport never starts an authorization of its own: a 403 `insufficient_scope` surfaces as
 * `InsufficientScopeError` for the relay's step-up (step-up.ts), and a refused refresh as an
 * error that says to run `login`.
 */
import type { AuthProvider } from "@modelcontextprotocol/client";
import { freshTokens, refreshTokens } from "./access-token.js";
import type { CredentialStore } from "./credentials.js";

export class StoredTokenAuth implements AuthProvider {
  private lastSent?: string;

  constructor(
    private readonly store: CredentialStore,
    private readonly serverUrl: string,
  ) {}

  async token(): Promise<string> {
    this.lastSent = (await freshTokens(this.store, this.serverUrl)).access_token;
    return this.lastSent;
  }

  async onUnauthorized(): Promise<void> {
    // Unless another process (or request) has refreshed since this token went out.
    const refused = this.lastSent;
    await refreshTokens(this.store, this.serverUrl, (t) => t.access_token !== refused);
  }
}
