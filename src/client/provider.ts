/**
 * The SDK's `OAuthClientProvider` on the credentials file, so that the SDK's `auth()` does
 * discovery, dynamic registration, PKCE, the code exchange and refreshes, and the file keeps
 * what it needs between runs. Two modes:
 * - login (interactive): the authorization URL goes to a callback (print it, open a browser);
 * - everything else (`token`, `connect`): when `auth()` would need a person, it throws
 *   `LoginRequiredError` instead, so a stdio client gets a clear error, not a hung browser.
 */
import { randomBytes } from "node:crypto";
import type { OAuthClientProvider, OAuthDiscoveryState } from "@modelcontextprotocol/sdk/client/auth.js";
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from "@modelcontextprotocol/sdk/shared/auth.js";
import type { CredentialStore, StoredTokens } from "./credentials.js";

/** No usable login for a server: the message says what happened and to run `login`. */
export class LoginRequiredError extends Error {
  constructor(
    readonly serverUrl: string,
    reason: string,
  ) {
    super(`${reason}; run: mcp-gateway login ${serverUrl}`);
    this.name = "LoginRequiredError";
  }
}

/** The interactive half: where the browser comes back to, and what to do with the URL. */
export interface InteractiveLogin {
  redirectUrl: string;
  state: string;
  redirect(authorizationUrl: URL): void | Promise<void>;
}

/** Used when no registration exists yet to name one (never sent: only `login` registers). */
const PLACEHOLDER_REDIRECT = "http://127.0.0.1/callback";

/** Never written to disk: the CLI does not manage its registration (RFC 7592), so it needs no key for it. */
const UNKEPT_CLIENT_FIELDS = ["registration_access_token"] as const;

export class CachedOAuthProvider implements OAuthClientProvider {
  private discovery?: OAuthDiscoveryState;
  private verifierInMemory?: string;

  constructor(
    private readonly store: CredentialStore,
    readonly serverUrl: string,
    private readonly login?: InteractiveLogin,
  ) {}

  get redirectUrl(): string {
    if (this.login) return this.login.redirectUrl;
    const client = this.store.get(this.serverUrl)?.client as { redirect_uris?: string[] } | undefined;
    return client?.redirect_uris?.[0] ?? PLACEHOLDER_REDIRECT;
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: "mcp-gateway CLI",
      redirect_uris: [this.redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      // A native app cannot keep a secret (RFC 8252 §8.5): PKCE protects the code instead.
      token_endpoint_auth_method: "none",
    };
  }

  state(): string {
    return this.login?.state ?? randomBytes(16).toString("base64url");
  }

  clientInformation(): OAuthClientInformationMixed | undefined {
    return this.store.get(this.serverUrl)?.client;
  }

  async saveClientInformation(info: OAuthClientInformationMixed): Promise<void> {
    const kept: Record<string, unknown> = { ...info };
    for (const field of UNKEPT_CLIENT_FIELDS) delete kept[field];
    await this.store.update(this.serverUrl, (entry) => ({
      ...entry,
      client: kept as OAuthClientInformationMixed,
    }));
  }

  tokens(): OAuthTokens | undefined {
    // A login always starts a new authorization: never refresh the login it replaces.
    if (this.login) return undefined;
    const stored = this.store.get(this.serverUrl)?.tokens;
    if (!stored) return undefined;
    const { expires_at, ...rest } = stored;
    const tokens: OAuthTokens = { ...rest };
    if (expires_at !== undefined)
      tokens.expires_in = Math.max(0, Math.floor((expires_at - Date.now()) / 1000));
    return tokens;
  }

  async saveTokens(tokens: OAuthTokens): Promise<void> {
    const { expires_in, ...rest } = tokens;
    const stored: StoredTokens = { ...rest };
    if (expires_in !== undefined) stored.expires_at = Date.now() + expires_in * 1000;
    await this.store.update(this.serverUrl, (entry) => {
      // The verifier has done its job once tokens arrive.
      const { code_verifier: _used, ...others } = entry ?? {};
      return { ...others, tokens: stored };
    });
  }

  async redirectToAuthorization(authorizationUrl: URL): Promise<void> {
    if (!this.login) throw new LoginRequiredError(this.serverUrl, "the login has expired or was revoked");
    await this.login.redirect(authorizationUrl);
  }

  async saveCodeVerifier(codeVerifier: string): Promise<void> {
    this.verifierInMemory = codeVerifier;
    // Only a login goes on to use it; a refresh that fell through to a new authorization does not.
    if (this.login) {
      await this.store.update(this.serverUrl, (entry) => ({ ...entry, code_verifier: codeVerifier }));
    }
  }

  codeVerifier(): string {
    const verifier = this.store.get(this.serverUrl)?.code_verifier ?? this.verifierInMemory;
    if (!verifier) throw new Error("no login is in progress for this server (no PKCE verifier)");
    return verifier;
  }

  async invalidateCredentials(scope: "all" | "client" | "tokens" | "verifier" | "discovery"): Promise<void> {
    if (scope === "all" || scope === "discovery") this.discovery = undefined;
    if (scope === "discovery") return;
    if (scope === "all" || scope === "verifier") this.verifierInMemory = undefined;
    await this.store.update(this.serverUrl, (entry) => {
      if (!entry) return undefined;
      const next = { ...entry };
      if (scope === "all" || scope === "client") delete next.client;
      if (scope === "all" || scope === "tokens") delete next.tokens;
      if (scope === "all" || scope === "verifier") delete next.code_verifier;
      return Object.keys(next).length ? next : undefined;
    });
  }

  /** Discovery is kept for this process only: metadata on disk could go stale unnoticed. */
  saveDiscoveryState(state: OAuthDiscoveryState): void {
    this.discovery = state;
  }

  discoveryState(): OAuthDiscoveryState | undefined {
    return this.discovery;
  }
}
