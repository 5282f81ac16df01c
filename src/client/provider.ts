/**
 * The SDK v2 `OAuthClientProvider` of a login, on the credentials file, so that the SDK's
 * `auth()` does discovery, dynamic registration, PKCE, the RFC 9207 `iss` check and the code
 * exchange, and the file keeps what it needs between runs: the registration under its issuer,
 * the tokens under the server URL (the SDK hands both the issuer it resolved, SEP-2352).
 *
 * Only a login uses it: a refresh (`token`, `connect`) goes straight to the token endpoint
 * (see access-token.ts), so nothing outside a login can register a client or want a browser.
 */
import type {
  OAuthClientInformationContext,
  OAuthClientMetadata,
  OAuthClientProvider,
  OAuthDiscoveryState,
  StoredOAuthClientInformation,
  StoredOAuthTokens,
} from "@modelcontextprotocol/client";
import type { CredentialStore, StoredClient, StoredTokens } from "./credentials.js";

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

export const CLIENT_NAME = "mcp-gateway CLI";

/** The RFC 7591 §3.2.1 fields the SDK's registration schema leaves out, and logout needs. */
type Management = Pick<StoredClient, "client_id" | "registration_access_token" | "registration_client_uri">;

export class LoginProvider implements OAuthClientProvider {
  private discovery?: OAuthDiscoveryState;
  private verifier?: string;
  private management?: Management;

  constructor(
    private readonly store: CredentialStore,
    readonly serverUrl: string,
    private readonly login: InteractiveLogin,
    discovery?: OAuthDiscoveryState,
  ) {
    this.discovery = discovery;
  }

  /**
   * `fetchFn` for `auth()`, reading the registration response on its way to the SDK: the SDK
   * parses it with a schema that drops `registration_access_token` and
   * `registration_client_uri`, which `logout` needs to delete the registration (RFC 7592 §2.3).
   */
  observing(fetchFn: (input: string | URL, init?: RequestInit) => Promise<Response>) {
    return async (input: string | URL, init?: RequestInit): Promise<Response> => {
      const res = await fetchFn(input, init);
      const endpoint = this.discovery?.authorizationServerMetadata?.registration_endpoint;
      if (
        res.status === 201 &&
        init?.method === "POST" &&
        endpoint &&
        String(input) === new URL(endpoint).href
      ) {
        const body = (await res
          .clone()
          .json()
          .catch(() => undefined)) as Partial<Management> | undefined;
        if (typeof body?.client_id === "string" && typeof body.registration_access_token === "string") {
          this.management = {
            client_id: body.client_id,
            registration_access_token: body.registration_access_token,
            ...(typeof body.registration_client_uri === "string" && {
              registration_client_uri: body.registration_client_uri,
            }),
          };
        }
      }
      return res;
    };
  }

  get redirectUrl(): string {
    return this.login.redirectUrl;
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: CLIENT_NAME,
      redirect_uris: [this.redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      // A native app cannot keep a secret (RFC 8252 §8.5): PKCE protects the code instead.
      token_endpoint_auth_method: "none",
      // SEP-837 (a MUST in 2026-07-28): a loopback redirect URI is a native application's.
      application_type: "native",
    };
  }

  state(): string {
    return this.login.state;
  }

  clientInformation(ctx?: OAuthClientInformationContext): StoredOAuthClientInformation | undefined {
    const issuer = ctx?.issuer ?? this.discovery?.authorizationServerMetadata?.issuer;
    if (issuer) {
      const kept = this.store.client(issuer);
      if (kept) return kept as StoredOAuthClientInformation;
    }
    // A registration from a version 1 file, bound to its issuer when the SDK stamps it; not a
    // device login's own (device-login.ts), which has no redirect URIs to come back to.
    const bound = this.store.get(this.serverUrl)?.client as
      | (StoredOAuthClientInformation & { grant_types?: string[] })
      | undefined;
    if (bound?.grant_types && !bound.grant_types.includes("authorization_code")) return undefined;
    return bound;
  }

  async saveClientInformation(
    info: StoredOAuthClientInformation,
    ctx?: OAuthClientInformationContext,
  ): Promise<void> {
    const issuer = ctx?.issuer ?? info.issuer;
    if (!issuer) throw new Error("the SDK saved a client registration without naming its issuer");
    // The registration access token is kept (the file is 0600, like the refresh tokens in it):
    // `logout` deletes the registration with it (RFC 7592 §2.3) when no other login uses it.
    const management = this.management?.client_id === info.client_id ? this.management : undefined;
    const kept: StoredClient = { ...info, ...management, issuer };
    await this.store.updateClient(issuer, (previous) => ({
      ...kept,
      ...(previous?.pre_registered && { pre_registered: true }),
    }));
    await this.store.update(this.serverUrl, (entry) => {
      if (!entry?.client) return entry;
      const { client: _bound, ...rest } = entry;
      return rest;
    });
  }

  tokens(): StoredOAuthTokens | undefined {
    // A login always starts a new authorization: never refresh the login it replaces.
    return undefined;
  }

  async saveTokens(tokens: StoredOAuthTokens, ctx?: OAuthClientInformationContext): Promise<void> {
    const { expires_in, ...rest } = tokens;
    const issuer = ctx?.issuer ?? tokens.issuer;
    const stored: StoredTokens = { ...rest, ...(issuer && { issuer }) };
    if (expires_in !== undefined) stored.expires_at = Date.now() + expires_in * 1000;
    await this.store.update(this.serverUrl, (entry) => ({
      ...entry,
      tokens: stored,
      ...(issuer && { issuer }),
    }));
  }

  async redirectToAuthorization(authorizationUrl: URL): Promise<void> {
    await this.login.redirect(authorizationUrl);
  }

  /** The verifier lives in this process only: the code exchange happens in the same run. */
  saveCodeVerifier(codeVerifier: string): void {
    this.verifier = codeVerifier;
  }

  codeVerifier(): string {
    if (!this.verifier) throw new Error("no login is in progress for this server (no PKCE verifier)");
    return this.verifier;
  }

  async invalidateCredentials(scope: "all" | "client" | "tokens" | "verifier" | "discovery"): Promise<void> {
    if (scope === "all" || scope === "client") {
      // The server no longer knows the registration: forget it, so the retry registers anew.
      // One made by hand is the person's to change, so it stays, and the error surfaces.
      const issuer =
        this.discovery?.authorizationServerMetadata?.issuer ?? this.store.get(this.serverUrl)?.issuer;
      if (issuer && !this.store.client(issuer)?.pre_registered) {
        await this.store.updateClient(issuer, () => undefined);
      }
    }
    if (scope === "all" || scope === "discovery") this.discovery = undefined;
    if (scope === "all" || scope === "verifier") this.verifier = undefined;
  }

  /** Discovery is kept for this process only: metadata on disk could go stale unnoticed. */
  saveDiscoveryState(state: OAuthDiscoveryState): void {
    this.discovery = state;
  }

  discoveryState(): OAuthDiscoveryState | undefined {
    return this.discovery;
  }
}
