/**
 * GitHub (github.com or GitHub Enterprise Server) as the upstream identity provider, through
 * an OAuth app: the web application flow with PKCE, then the REST API for who the person is.
 * Organisations and teams are only read when the allowlist needs them (they need `read:org`).
 */
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

export type GitHubConfig = GatewayConfig["idp"]["github"];

export interface GitHubProviderOptions {
  /** Per-request timeout towards GitHub, in milliseconds (default 10 s). */
  timeoutMs?: number;
}

/** The most pages of orgs or teams read (100 each); beyond that, the list is cut short. */
const MAX_PAGES = 10;

interface GitHubUser {
  id: number;
  login: string;
  name?: string | null;
  email?: string | null;
}

/** An API answer other than 2xx; the status lets callers tolerate a missing scope. */
class GitHubApiError extends IdpError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

const trimSlash = (u: string) => u.replace(/\/+$/, "");

/** The `rel="next"` URL of a GitHub Link header, if any. */
function nextLink(header: string | null): string | undefined {
  for (const part of header?.split(",") ?? []) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(part);
    if (m?.[1]) return m[1];
  }
  return undefined;
}

/** Logs people in with GitHub and admits them by user, organisation or team. */
export class GitHubIdentityProvider implements RedirectIdentityProvider {
  readonly kind = "redirect" as const;
  readonly type = "github";
  readonly displayName = "GitHub";
  private readonly webUrl: string;
  private readonly apiUrl: string;
  private readonly clientId: string;
  private readonly clientSecret: string;
  private readonly timeoutMs: number;

  constructor(
    private readonly cfg: GitHubConfig,
    opts: GitHubProviderOptions = {},
  ) {
    if (!cfg.client_id) throw new ConfigError("idp.github.client_id is required when idp.type is github");
    if (!cfg.client_secret)
      throw new ConfigError("idp.github.client_secret is required when idp.type is github");
    this.clientId = cfg.client_id;
    this.clientSecret = cfg.client_secret;
    this.webUrl = trimSlash(cfg.web_url);
    this.apiUrl = trimSlash(cfg.api_url);
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** Whether the allowlist names organisations or teams, so membership must be read. */
  private get needsGroups(): boolean {
    return Boolean(this.cfg.allowed_orgs?.length || this.cfg.allowed_teams?.length);
  }

  /** The OAuth scopes asked of GitHub. */
  get scopes(): string[] {
    return ["read:user", "user:email", ...(this.needsGroups ? ["read:org"] : [])];
  }

  async authorizationUrl(params: {
    state: string;
    redirectUri: string;
    codeChallenge: string;
  }): Promise<string> {
    const url = new URL(`${this.webUrl}/login/oauth/authorize`);
    url.search = new URLSearchParams({
      client_id: this.clientId,
      redirect_uri: params.redirectUri,
      scope: this.scopes.join(" "),
      state: params.state,
      code_challenge: params.codeChallenge,
      code_challenge_method: "S256",
      allow_signup: "false",
    }).toString();
    return url.toString();
  }

  async complete(params: { code: string; redirectUri: string; codeVerifier: string }): Promise<UserIdentity> {
    return (await this.signIn(params)).user;
  }

  /** The identity, and the user's GitHub token: what the re-check reads membership with. */
  async signIn(params: { code: string; redirectUri: string; codeVerifier: string }): Promise<UpstreamLogin> {
    const token = await this.exchangeCode(params);
    return { user: await this.identity(token), credential: { access_token: token } };
  }

  /**
   * Reads the person and their organisations and teams again with their own token. A token
   * GitHub no longer accepts (401: the user revoked the app, the account is gone or suspended)
   * is `gone`; no answer, a 5xx or a rate limit is `unavailable`.
   */
  async recheck(user: UserIdentity, credential: UpstreamCredential | undefined): Promise<Recheck> {
    const token = credential?.access_token;
    if (!token) return { outcome: "gone", reason: "no GitHub authorization is kept for this login" };
    try {
      const current = await this.identity(token);
      if (current.sub !== user.sub)
        return { outcome: "gone", reason: "the GitHub token speaks for someone else" };
      return { outcome: "current", user: current };
    } catch (err) {
      if (err instanceof GitHubApiError && err.status === 401) {
        return { outcome: "gone", reason: "GitHub no longer accepts the user's authorization" };
      }
      if (err instanceof IdpError) return { outcome: "unavailable", reason: err.message };
      throw err;
    }
  }

  private async identity(token: string): Promise<UserIdentity> {
    const user = await this.api<GitHubUser>(token, "/user");
    if (typeof user.id !== "number" || typeof user.login !== "string") {
      throw new IdpError("GitHub returned a user profile without an id or login");
    }
    const email = user.email ?? (await this.primaryEmail(token));
    const identity: UserIdentity = { sub: String(user.id), login: user.login, provider: "github" };
    if (user.name) identity.name = user.name;
    if (email) identity.email = email;
    if (this.needsGroups) identity.groups = await this.groups(token);
    return identity;
  }

  checkAccess(user: UserIdentity): AccessDecision {
    return evaluatePolicy(this.cfg, user, {
      allowed: false,
      reason: "no GitHub users are allowed: set allowed_users",
    });
  }

  private async send(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, { ...init, redirect: "error", signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      const e = err as Error;
      const why =
        e.name === "TimeoutError"
          ? `no answer within ${this.timeoutMs / 1000} s`
          : ((e.cause as Error | undefined)?.message ?? e.message);
      throw new IdpError(`Could not reach GitHub at ${new URL(url).origin}: ${why}`, { cause: err });
    }
  }

  /** POST /login/oauth/access_token; GitHub reports most failures as HTTP 200 with an `error`. */
  private async exchangeCode(params: {
    code: string;
    redirectUri: string;
    codeVerifier: string;
  }): Promise<string> {
    const res = await this.send(`${this.webUrl}/login/oauth/access_token`, {
      method: "POST",
      headers: { accept: "application/json", "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        client_id: this.clientId,
        client_secret: this.clientSecret,
        code: params.code,
        redirect_uri: params.redirectUri,
        code_verifier: params.codeVerifier,
      }),
    });
    let body: { access_token?: unknown; error?: unknown; error_description?: unknown };
    try {
      body = (await res.json()) as typeof body;
    } catch {
      throw new IdpError(`GitHub rejected the login: unexpected answer (HTTP ${res.status})`);
    }
    if (typeof body.error === "string") {
      const detail = typeof body.error_description === "string" ? body.error_description : body.error;
      throw new IdpError(`GitHub rejected the login: ${detail}`);
    }
    if (!res.ok || typeof body.access_token !== "string" || !body.access_token) {
      throw new IdpError(`GitHub rejected the login: no access token in the answer (HTTP ${res.status})`);
    }
    return body.access_token;
  }

  /** GET one REST resource as JSON. */
  private async api<T>(token: string, path: string): Promise<T> {
    const res = await this.apiRequest(`${this.apiUrl}${path}`, token);
    return (await res.json()) as T;
  }

  private async apiRequest(url: string, token: string): Promise<Response> {
    const res = await this.send(url, {
      headers: {
        accept: "application/vnd.github+json",
        authorization: `Bearer ${token}`,
        "user-agent": "mcp-oauth-gateway",
        "x-github-api-version": "2022-11-28",
      },
    });
    if (!res.ok) {
      let message = "";
      try {
        message = String(((await res.json()) as { message?: unknown }).message ?? "");
      } catch {}
      const path = new URL(url).pathname;
      throw new GitHubApiError(
        `GitHub rejected the login: ${path} answered HTTP ${res.status}${message ? ` (${message})` : ""}`,
        res.status,
      );
    }
    return res;
  }

  private async list<T>(token: string, path: string): Promise<T[]> {
    const out: T[] = [];
    let url: string | undefined = `${this.apiUrl}${path}?per_page=100`;
    for (let page = 0; url && page < MAX_PAGES; page++) {
      const res = await this.apiRequest(url, token);
      const items = (await res.json()) as unknown;
      if (!Array.isArray(items))
        throw new IdpError(`GitHub returned something other than a list for ${path}`);
      out.push(...(items as T[]));
      url = nextLink(res.headers.get("link"));
    }
    return out;
  }

  /** The primary, verified address; none when the list is unavailable (no `user:email` scope). */
  private async primaryEmail(token: string): Promise<string | undefined> {
    let emails: Array<{ email?: string; primary?: boolean; verified?: boolean }>;
    try {
      emails = await this.list(token, "/user/emails");
    } catch (err) {
      if (err instanceof GitHubApiError && (err.status === 403 || err.status === 404)) return undefined;
      throw err;
    }
    return emails.find((e) => e.primary && e.verified && typeof e.email === "string")?.email;
  }

  /** Organisation logins and "org/team-slug" names. */
  private async groups(token: string): Promise<string[]> {
    const [orgs, teams] = await Promise.all([
      this.list<{ login?: string }>(token, "/user/orgs"),
      this.list<{ slug?: string; organization?: { login?: string } }>(token, "/user/teams"),
    ]);
    const groups = new Set<string>();
    for (const o of orgs) if (o.login) groups.add(o.login);
    for (const t of teams) {
      const org = t.organization?.login;
      if (!org || !t.slug) continue;
      groups.add(org); // a team member is a member of its organisation
      groups.add(`${org}/${t.slug}`);
    }
    return [...groups];
  }
}
