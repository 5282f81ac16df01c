/**
 * The person's side of an authorization: the pending request between /authorize and the
 * code, the login session ("log in once"), and remembered consent.
 *
 *   pending:{id}           a validated request waiting for login/consent,  TTL code lifetime x 2
 *                          or a sign-in for one of the gateway's own pages (the device page)
 *   sessions:{hash}        a browser's login                               TTL session lifetime
 *   consents:{sub}:{client} what a user allowed a client                   TTL refresh lifetime
 *
 * Sessions are in their user's index, consents in their user's and their client's (owners.ts),
 * so removing a user or a client ends them at once.
 *
 * A pending request is bound to the browser that started it: the hash of a cookie value is
 * stored with it, so a link to /consent?request=… opened in another browser does nothing.
 */

import { hashSecret, newSecret, secretMatches } from "../crypto/secrets.js";
import type { UserIdentity } from "../idp/idp.js";
import type { Store } from "../store/store.js";
import type { AuthorizationRequest } from "./authorize.js";
import { clientIndex, indexEntry, memberOf, userIndex } from "./owners.js";

const SESSIONS = "sessions";
const CONSENTS = "consents";

export interface PendingAuthorization extends AuthorizationRequest {
  id: string;
  browser_hash: string;
  /** Anti-CSRF token for the login and consent forms. */
  csrf: string;
  /** PKCE verifier for the upstream identity provider, when it redirects. */
  upstream_verifier?: string;
}

/**
 * A sign-in started by one of the gateway's own pages rather than by a client's /authorize: the
 * device page (RFC 8628), where the person signs in before typing a code. It goes through the
 * same login and upstream callback, then back to `return_to` instead of to consent.
 */
export interface PendingPageLogin {
  id: string;
  browser_hash: string;
  csrf: string;
  upstream_verifier?: string;
  /** A path on the gateway, chosen by the gateway, never by the request. */
  return_to: string;
  /** Who asks, as the login page names it ("A device"). */
  requester: string;
}

/** What a login form or an upstream callback completes. */
export type PendingLogin = PendingAuthorization | PendingPageLogin;

export function isPageLogin(pending: PendingLogin): pending is PendingPageLogin {
  return "return_to" in pending;
}

export interface Session {
  user: UserIdentity;
  /** Seconds since the epoch. */
  auth_time: number;
}

interface Consent {
  scope: string[];
  resources: string[];
  at: number;
  /** Whose and for which client (the key alone cannot say: both may contain ":"). */
  sub?: string;
  client_id?: string;
}

export class Interactions {
  constructor(
    private readonly store: Store,
    private readonly ttl: { pending: number; session: number; consent: number },
  ) {}

  async createPending(request: AuthorizationRequest, browserToken: string): Promise<PendingAuthorization> {
    const pending: PendingAuthorization = {
      ...request,
      id: newSecret(24),
      browser_hash: hashSecret(browserToken),
      csrf: newSecret(24),
    };
    await this.save(pending);
    return pending;
  }

  async createPageLogin(
    page: Pick<PendingPageLogin, "return_to" | "requester">,
    browserToken: string,
  ): Promise<PendingPageLogin> {
    const pending: PendingPageLogin = {
      ...page,
      id: newSecret(24),
      browser_hash: hashSecret(browserToken),
      csrf: newSecret(24),
    };
    await this.save(pending);
    return pending;
  }

  save(pending: PendingLogin): Promise<void> {
    return this.store.put("pending", pending.id, pending as never, this.ttl.pending);
  }

  /** The pending authorization request, if it exists and belongs to this browser. */
  async getPending(
    id: string | undefined,
    browserToken: string | undefined,
  ): Promise<PendingAuthorization | undefined> {
    const pending = await this.getLogin(id, browserToken);
    return pending && !isPageLogin(pending) ? pending : undefined;
  }

  /** The pending sign-in of either kind, if it exists and belongs to this browser. */
  async getLogin(
    id: string | undefined,
    browserToken: string | undefined,
  ): Promise<PendingLogin | undefined> {
    if (!id || !browserToken || id.length > 100) return undefined;
    const pending = (await this.store.get("pending", id)) as PendingLogin | undefined;
    if (!pending || !secretMatches(browserToken, pending.browser_hash)) return undefined;
    return pending;
  }

  /** Ends a pending request; of two concurrent finishers only one gets it. */
  async finishPending(id: string): Promise<boolean> {
    return (await this.store.take("pending", id)) !== undefined;
  }

  async createSession(user: UserIdentity): Promise<string> {
    const token = newSecret();
    const key = hashSecret(token);
    const session: Session = { user, auth_time: Math.floor(Date.now() / 1000) };
    await indexEntry(this.store, [userIndex(user.sub)], SESSIONS, key, this.ttl.session);
    await this.store.put(SESSIONS, key, session as never, this.ttl.session);
    return token;
  }

  async getSession(token: string | undefined): Promise<Session | undefined> {
    if (!token || token.length > 100) return undefined;
    return (await this.store.get(SESSIONS, hashSecret(token))) as Session | undefined;
  }

  async deleteSession(token: string | undefined): Promise<void> {
    if (!token || token.length > 100) return;
    const key = hashSecret(token);
    const session = (await this.store.take(SESSIONS, key)) as Session | undefined;
    if (session) await this.store.indexRemove(userIndex(session.user.sub), [memberOf(SESSIONS, key)]);
  }

  async rememberConsent(sub: string, clientId: string, scope: string[], resources: string[]): Promise<void> {
    const previous = await this.consent(sub, clientId);
    const merged: Consent = {
      scope: [...new Set([...(previous?.scope ?? []), ...scope])],
      resources: [...new Set([...(previous?.resources ?? []), ...resources])],
      at: Date.now(),
      sub,
      client_id: clientId,
    };
    const key = consentKey(sub, clientId);
    await indexEntry(this.store, [userIndex(sub), clientIndex(clientId)], CONSENTS, key, this.ttl.consent);
    await this.store.put(CONSENTS, key, merged as never, this.ttl.consent);
  }

  /** Whether the user already allowed this client everything it asks for now. */
  async hasConsent(sub: string, clientId: string, scope: string[], resources: string[]): Promise<boolean> {
    const consent = await this.consent(sub, clientId);
    if (!consent) return false;
    return (
      scope.every((s) => consent.scope.includes(s)) && resources.every((r) => consent.resources.includes(r))
    );
  }

  private async consent(sub: string, clientId: string): Promise<Consent | undefined> {
    return (await this.store.get(CONSENTS, consentKey(sub, clientId))) as Consent | undefined;
  }
}

const consentKey = (sub: string, clientId: string) => `${sub}:${clientId}`;
