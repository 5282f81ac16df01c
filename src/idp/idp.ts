/**
 * Upstream identity: who the person at the browser is. One interface, three providers
 * (local.ts, github.ts, oidc.ts); the authorization server never knows which one is in use.
 */

/** A person, as the gateway remembers them in grants and puts them in access tokens. */
export interface UserIdentity {
  /** Stable id at the provider (GitHub numeric id, local user name, OIDC `sub`). */
  sub: string;
  /** Login / user name (GitHub login, local name, OIDC preferred_username). */
  login: string;
  name?: string;
  email?: string;
  /** "local" | "github" | "oidc" */
  provider: string;
  /** Organisation names and "org/team" slugs (GitHub), or OIDC groups; used by access policies. */
  groups?: string[];
}

export type AccessDecision = { allowed: true } | { allowed: false; reason: string };

/**
 * What the gateway keeps of an upstream login to ask the provider about the person again
 * later (GitHub: the user's OAuth token; OIDC: refresh and access token). Sealed at rest.
 */
export interface UpstreamCredential {
  access_token?: string;
  refresh_token?: string;
  /** Epoch seconds the access token stops working, when the provider said. */
  expires_at?: number;
}

/** A login at the provider: who, and what lets the gateway ask about them again. */
export interface UpstreamLogin {
  user: UserIdentity;
  credential?: UpstreamCredential;
}

/**
 * The provider's answer about a person now (liveness.ts): `current` with their identity as it
 * is now (groups re-read) and, when the provider rotated it, a new credential; `gone` when the
 * provider says they no longer exist or may not sign in (a deleted or disabled account, a
 * revoked authorization); `unavailable` when it could not be asked (an outage, a timeout).
 */
export type Recheck =
  | { outcome: "current"; user: UserIdentity; credential?: UpstreamCredential }
  | { outcome: "gone"; reason: string }
  | { outcome: "unavailable"; reason: string };

/** A provider that sends the browser away and gets it back on /callback with a code. */
export interface RedirectIdentityProvider {
  readonly kind: "redirect";
  readonly type: string;
  /** Human name for the login button ("GitHub", "Example SSO"). */
  readonly displayName: string;
  /** URL to send the browser to; `state` is opaque and comes back on the callback. */
  authorizationUrl(params: { state: string; redirectUri: string; codeChallenge: string }): Promise<string>;
  /** Exchange the upstream code for the user's identity. Throws IdpError on failure. */
  complete(params: { code: string; redirectUri: string; codeVerifier: string }): Promise<UserIdentity>;
  /** The same, with the credential that lets `recheck` ask about the person later. */
  signIn(params: { code: string; redirectUri: string; codeVerifier: string }): Promise<UpstreamLogin>;
  /** Whether this person may log in at all (the provider's allowlist). */
  checkAccess(user: UserIdentity): AccessDecision;
  /** Asks the provider about the person again, with the credential kept from their login. */
  recheck(user: UserIdentity, credential: UpstreamCredential | undefined): Promise<Recheck>;
}

/** A provider that checks a user name and password on the gateway's own login page. */
export interface PasswordIdentityProvider {
  readonly kind: "password";
  readonly type: string;
  readonly displayName: string;
  /** The identity, or undefined for a wrong name or password (never says which). */
  verify(username: string, password: string): Promise<UserIdentity | undefined>;
  checkAccess(user: UserIdentity): AccessDecision;
  /** Whether the account still exists and may sign in. */
  recheck(user: UserIdentity): Promise<Recheck>;
}

export type IdentityProvider = RedirectIdentityProvider | PasswordIdentityProvider;

/** Upstream failure: the message is safe to show to the person; `cause` is for the log only. */
export class IdpError extends Error {
  override readonly name = "IdpError";
}
