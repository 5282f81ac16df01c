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
  /** Whether this person may log in at all (the provider's allowlist). */
  checkAccess(user: UserIdentity): AccessDecision;
}

/** A provider that checks a user name and password on the gateway's own login page. */
export interface PasswordIdentityProvider {
  readonly kind: "password";
  readonly type: string;
  readonly displayName: string;
  /** The identity, or undefined for a wrong name or password (never says which). */
  verify(username: string, password: string): Promise<UserIdentity | undefined>;
  checkAccess(user: UserIdentity): AccessDecision;
}

export type IdentityProvider = RedirectIdentityProvider | PasswordIdentityProvider;

/** Upstream failure: the message is safe to show to the person; `cause` is for the log only. */
export class IdpError extends Error {
  override readonly name = "IdpError";
}
