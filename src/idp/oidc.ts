/**
 * Any OpenID Connect provider (Keycloak, Entra ID, Google, Authentik, ...) through issuer
 * discovery, the authorization code flow with PKCE, a verified id_token and userinfo.
 *
 * Nonce: the authorize flow keeps only `state` and the PKCE verifier, so the nonce is derived
 * from the PKCE challenge, which `complete()` recomputes from the verifier:
 * nonce = base64url(sha256("nonce:" + code_challenge)). It binds the id_token to this login.
 */
import { createHash } from "node:crypto";
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from "jose";
import { ConfigError } from "../config/load.js";
import type { GatewayConfig } from "../config/schema.js";
import {
  type AccessDecision,
  IdpError,
  type Recheck,
  type RedirectIdentityProvider,
  type UpstreamCredential,
  type UpstreamLogin,
  type UserIdentity,
} from "./idp.js";
import { evaluatePolicy } from "./policy.js";

export type OidcConfig = GatewayConfig["idp"]["oidc"];

export interface OidcProviderOptions {
  /** Per-request timeout towards the provider, in milliseconds (default 10 s). */
  timeoutMs?: number;
}

/** The parts of the discovery document this provider uses. */
export interface OidcMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
  userinfo_endpoint?: string;
  token_endpoint_auth_methods_supported?: string[];
}

const b64sha256 = (s: string) => createHash("sha256").update(s).digest("base64url");

/** The nonce for a login, from its PKCE challenge (see the file comment). */
export function nonceFor(codeChallenge: string): string {
  return b64sha256(`nonce:${codeChallenge}`);
}

async function timedFetch(url: string, init: RequestInit, timeoutMs: number, who: string): Promise<Response> {
  try {
    return await fetch(url, { ...init, redirect: "error", signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const e = err as Error;
    const why =
      e.name === "TimeoutError"
        ? `no answer within ${timeoutMs / 1000} s`
        : ((e.cause as Error | undefined)?.message ?? e.message);
    throw new IdpError(`Could not reach ${who} at ${new URL(url).origin}: ${why}`, { cause: err });
  }
}

async function readJson(res: Response): Promise<Record<string, unknown> | undefined> {
  try {
    const body = (await res.json()) as unknown;
    return typeof body === "object" && body !== null && !Array.isArray(body)
      ? (body as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

const str = (v: unknown) => (typeof v === "string" && v ? v : undefined);

/** Logs people in with an OpenID Connect provider and admits them by user, email or group. */
export class OidcIdentityProvider implements RedirectIdentityProvider {
  readonly kind = "redirect" as const;
  readonly type = "oidc";
  readonly displayName: string;
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;
  private readonly timeoutMs: number;

  private constructor(
    private readonly cfg: OidcConfig & { client_id: string },
    readonly metadata: OidcMetadata,
    opts: OidcProviderOptions,
  ) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.displayName = new URL(metadata.issuer).host;
    this.jwks = createRemoteJWKSet(new URL(metadata.jwks_uri), { timeoutDuration: this.timeoutMs });
  }

  /** Reads `{issuer}/.well-known/openid-configuration` and builds the provider. */
  static async discover(cfg: OidcConfig, opts: OidcProviderOptions = {}): Promise<OidcIdentityProvider> {
    if (!cfg.issuer) throw new ConfigError("idp.oidc.issuer is required when idp.type is oidc");
    if (!cfg.client_id) throw new ConfigError("idp.oidc.client_id is required when idp.type is oidc");
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const url = `${cfg.issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
    const res = await timedFetch(
      url,
      { headers: { accept: "application/json" } },
      timeoutMs,
      "the OpenID provider",
    );
    const doc = res.ok ? await readJson(res) : undefined;
    if (!doc) throw new IdpError(`No OpenID configuration at ${url} (HTTP ${res.status})`);
    for (const key of ["issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"]) {
      if (!str(doc[key])) throw new IdpError(`The OpenID configuration at ${url} has no ${key}`);
    }
    // OIDC Discovery §4.3: the document's issuer must be the one asked for.
    if ((doc.issuer as string).replace(/\/+$/, "") !== cfg.issuer.replace(/\/+$/, "")) {
      throw new IdpError(`The OpenID configuration at ${url} is for another issuer (${String(doc.issuer)})`);
    }
    return new OidcIdentityProvider(
      { ...cfg, client_id: cfg.client_id },
      doc as unknown as OidcMetadata,
      opts,
    );
  }

  async authorizationUrl(params: {
    state: string;
    redirectUri: string;
    codeChallenge: string;
  }): Promise<string> {
    const url = new URL(this.metadata.authorization_endpoint);
    const query: Record<string, string> = {
      response_type: "code",
      client_id: this.cfg.client_id,
      redirect_uri: params.redirectUri,
      scope: this.cfg.scopes.includes("openid")
        ? this.cfg.scopes.join(" ")
        : ["openid", ...this.cfg.scopes].join(" "),
      state: params.state,
      code_challenge: params.codeChallenge,
      code_challenge_method: "S256",
      nonce: nonceFor(params.codeChallenge),
    };
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    return url.toString();
  }

  async complete(params: { code: string; redirectUri: string; codeVerifier: string }): Promise<UserIdentity> {
    return (await this.signIn(params)).user;
  }

  /** The identity, and the provider's tokens: what the re-check asks the provider with. */
  async signIn(params: { code: string; redirectUri: string; codeVerifier: string }): Promise<UpstreamLogin> {
    const tokens = await this.exchangeCode(params);
    if (!tokens.idToken)
      throw new IdpError(`${this.displayName} rejected the login: no id_token in the answer`);
    const claims = await this.verifyIdToken(tokens.idToken, nonceFor(b64sha256(params.codeVerifier)));
    const sub = claims.sub as string;
    const info = await this.userinfo(tokens.accessToken, sub);
    return { user: this.identity(sub, { ...claims, ...info }), credential: tokens.credential };
  }

  /**
   * Asks the provider again: its refresh grant (OIDC Core §12) when it gave a refresh token,
   * else userinfo with the access token. A refusal (invalid_grant, a 401 from userinfo, no
   * credential left that could ask) is `gone`: the person signs in through the browser again,
   * where the provider decides. No answer or a 5xx is `unavailable`.
   */
  async recheck(user: UserIdentity, credential: UpstreamCredential | undefined): Promise<Recheck> {
    try {
      if (credential?.refresh_token) {
        const tokens = await this.tokenRequest(
          new URLSearchParams({ grant_type: "refresh_token", refresh_token: credential.refresh_token }),
        );
        if (tokens.refused)
          return { outcome: "gone", reason: `${this.displayName} refused: ${tokens.refused}` };
        let claims: Record<string, unknown> = {};
        if (tokens.idToken) {
          const verified = await this.verifyIdToken(tokens.idToken, undefined);
          if (verified.sub !== user.sub)
            return { outcome: "gone", reason: "the provider answered for someone else" };
          claims = verified;
        }
        const info = await this.userinfo(tokens.accessToken, user.sub);
        // A provider may keep its refresh token across uses (no rotation): keep the one we had.
        const next = {
          ...tokens.credential,
          refresh_token: tokens.credential.refresh_token ?? credential.refresh_token,
        };
        return {
          outcome: "current",
          user: this.identity(user.sub, { ...claims, ...info }, user.login),
          credential: next,
        };
      }
      const live = credential?.access_token && (credential.expires_at ?? Infinity) > Date.now() / 1000;
      if (!live || !this.metadata.userinfo_endpoint) {
        return { outcome: "gone", reason: `${this.displayName} gave no refresh token to ask again with` };
      }
      const info = await this.userinfo(credential.access_token, user.sub, { refusalIsGone: true });
      if (!info) return { outcome: "gone", reason: `${this.displayName} no longer accepts the login` };
      return { outcome: "current", user: this.identity(user.sub, { ...info }, user.login) };
    } catch (err) {
      if (err instanceof IdpError) return { outcome: "unavailable", reason: err.message };
      throw err;
    }
  }

  /** A UserIdentity from id_token and userinfo claims; a re-check keeps the login unless the provider renamed it. */
  private identity(sub: string, all: Record<string, unknown>, previousLogin?: string): UserIdentity {
    const user: UserIdentity = {
      sub,
      login: str(all.preferred_username) ?? previousLogin ?? str(all.email) ?? sub,
      provider: "oidc",
    };
    const name = str(all.name);
    if (name) user.name = name;
    // An address the provider says is unverified must not satisfy allowed_emails.
    const email = str(all.email);
    if (email && all.email_verified !== false && all.email_verified !== "false") user.email = email;
    if (Array.isArray(all.groups)) user.groups = all.groups.filter((g): g is string => typeof g === "string");
    return user;
  }

  /** An empty allowlist admits nobody (many issuers, Google for one, let anyone sign up). */
  checkAccess(user: UserIdentity): AccessDecision {
    return evaluatePolicy(this.cfg, user, {
      allowed: false,
      reason: 'no users are allowed: set idp.oidc.allowed_users ("*" for everyone at the provider)',
    });
  }

  private async exchangeCode(params: { code: string; redirectUri: string; codeVerifier: string }) {
    const tokens = await this.tokenRequest(
      new URLSearchParams({
        grant_type: "authorization_code",
        code: params.code,
        redirect_uri: params.redirectUri,
        code_verifier: params.codeVerifier,
      }),
    );
    if (tokens.refused) throw new IdpError(`${this.displayName} rejected the login: ${tokens.refused}`);
    return tokens;
  }

  /**
   * One token endpoint request with the client's credentials. `refused` is the provider's
   * invalid_grant (a spent code, a refresh token it no longer honours); other errors throw.
   */
  private async tokenRequest(body: URLSearchParams) {
    const headers: Record<string, string> = {
      accept: "application/json",
      "content-type": "application/x-www-form-urlencoded",
    };
    const methods = this.metadata.token_endpoint_auth_methods_supported ?? ["client_secret_basic"];
    const secret = this.cfg.client_secret;
    if (secret && (methods.includes("client_secret_basic") || !methods.includes("client_secret_post"))) {
      // RFC 6749 §2.3.1: form-encode each part before base64.
      const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, "+");
      headers.authorization = `Basic ${Buffer.from(`${enc(this.cfg.client_id)}:${enc(secret)}`).toString("base64")}`;
    } else {
      body.set("client_id", this.cfg.client_id);
      if (secret) body.set("client_secret", secret);
    }
    const res = await timedFetch(
      this.metadata.token_endpoint,
      { method: "POST", headers, body },
      this.timeoutMs,
      this.displayName,
    );
    const json = await readJson(res);
    const detail = str(json?.error_description) ?? str(json?.error) ?? `HTTP ${res.status}`;
    if (json?.error === "invalid_grant") return { refused: detail, credential: {} as UpstreamCredential };
    if (!res.ok || !json || json.error)
      throw new IdpError(`${this.displayName} rejected the login: ${detail}`);
    const accessToken = str(json.access_token);
    const credential: UpstreamCredential = {};
    if (accessToken) credential.access_token = accessToken;
    const refreshToken = str(json.refresh_token);
    if (refreshToken) credential.refresh_token = refreshToken;
    if (typeof json.expires_in === "number")
      credential.expires_at = Math.floor(Date.now() / 1000) + json.expires_in;
    return { refused: undefined, idToken: str(json.id_token), accessToken, credential };
  }

  /** `nonce` undefined: an id_token from a refresh, which carries none to compare (OIDC Core §12.2). */
  private async verifyIdToken(idToken: string, nonce: string | undefined): Promise<JWTPayload> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(idToken, this.jwks, {
        issuer: this.metadata.issuer,
        audience: this.cfg.client_id,
        requiredClaims: ["sub", "exp", "iat"],
      }));
    } catch (err) {
      throw new IdpError(
        `${this.displayName} sent an identity token that does not check out: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    if (nonce !== undefined && payload.nonce !== nonce) {
      throw new IdpError(`${this.displayName} sent an identity token for another login (nonce mismatch)`);
    }
    // OIDC Core §3.1.3.7: with several audiences, azp must name this client.
    if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp !== this.cfg.client_id) {
      throw new IdpError(`${this.displayName} sent an identity token issued to another client`);
    }
    return payload;
  }

  /**
   * Userinfo claims, or none when the provider has no endpoint. With `refusalIsGone`, a 401 is
   * undefined (the provider no longer accepts the token) rather than an error.
   */
  private async userinfo(
    accessToken: string | undefined,
    sub: string,
    opts: { refusalIsGone?: boolean } = {},
  ): Promise<Record<string, unknown> | undefined> {
    if (!this.metadata.userinfo_endpoint || !accessToken) return {};
    const res = await timedFetch(
      this.metadata.userinfo_endpoint,
      { headers: { accept: "application/json", authorization: `Bearer ${accessToken}` } },
      this.timeoutMs,
      this.displayName,
    );
    if (opts.refusalIsGone && res.status === 401) return undefined;
    const json = res.ok ? await readJson(res) : undefined;
    if (!json)
      throw new IdpError(`${this.displayName} did not say who you are: userinfo answered HTTP ${res.status}`);
    // OIDC Core §5.3.2: userinfo about someone else must not be used.
    if (json.sub !== sub) throw new IdpError(`${this.displayName} sent user information for another user`);
    return json;
  }
}
