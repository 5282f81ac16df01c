/**
 * The browser-facing flow: /authorize -> /login (form or upstream redirect) -> /callback ->
 * /consent -> back to the client with a code. Each step finds the pending request by id and
 * checks it belongs to this browser; forms carry an anti-CSRF token. The device page
 * (device-routes.ts) signs people in through the same /login and /callback, then gets them back;
 * so does `/signin`, for the landing and account pages. Signing out is account-routes.ts's.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { publicPath } from "../../config/public-path.js";
import { constantTimeEqual, newSecret } from "../../crypto/secrets.js";
import type { UpstreamLogin, UserIdentity } from "../../idp/idp.js";
import { IdpError } from "../../idp/idp.js";
import { consentPage, errorPage, loginPage } from "../../web/pages.js";
import {
  AuthorizePageError,
  AuthorizeRedirectError,
  authorizationResponseUrl,
  validateAuthorizationRequest,
} from "../authorize.js";
import type { ClientRecord } from "../clients.js";
import { isPageLogin, type PendingAuthorization, type PendingLogin } from "../interaction.js";
import { s256 } from "../pkce.js";
import type { AuthorizationServer } from "../server.js";
import { routeBrakes } from "./brakes.js";
import { cookiesFor, readCookie, setCookie } from "./cookies.js";
import { OAUTH_BODY_LIMIT } from "./endpoints.js";
import { PERSON, page } from "./error-handler.js";
import { refuseLogin } from "./refusal.js";

type Form = Record<string, unknown>;

const field = (form: Form, name: string): string | undefined => {
  const v = form[name];
  return typeof v === "string" ? v : undefined;
};

const EXPIRED = () =>
  errorPage(
    "This sign-in has expired",
    "The sign-in link is no longer valid, or it was opened in another browser.",
  );

function clientName(client: ClientRecord | undefined, clientId: string): string {
  return client?.client_name ?? clientId;
}

/** "3 minutes", "40 seconds": how long a braked sign-in waits, for the form's message. */
export function waitText(seconds: number): string {
  if (seconds < 60) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? "" : "s"}`;
}

function redirectHost(uri: string): string {
  const url = new URL(uri);
  return url.host || `${url.protocol}//`;
}

export async function registerInteractionRoutes(
  app: FastifyInstance,
  as: AuthorizationServer,
): Promise<void> {
  const {
    names: { browser: BROWSER_COOKIE, session: SESSION_COOKIE },
    scope,
  } = cookiesFor(as.issuer);
  const { interactions, parts } = as;
  const idp = parts.idp;
  /** The gateway's own paths as the browser reaches them (under public_url's path). */
  const base = publicPath(as.issuer);
  const at = (path: string) => `${base}${path}`;

  const browserToken = (request: FastifyRequest, reply: FastifyReply): string => {
    const existing = readCookie(request, BROWSER_COOKIE);
    if (existing) return existing;
    const token = newSecret();
    setCookie(reply, BROWSER_COOKIE, token, scope);
    return token;
  };
  const pendingFor = (request: FastifyRequest, id: string | undefined) =>
    interactions.getPending(id, readCookie(request, BROWSER_COOKIE));
  /** A sign-in for a client's authorization or for one of the gateway's pages (interaction.ts). */
  const loginFor = (request: FastifyRequest, id: string | undefined) =>
    interactions.getLogin(id, readCookie(request, BROWSER_COOKIE));
  /** Who the login page says is asking; none for the gateway's own landing and account pages. */
  const requesterName = async (pending: PendingLogin) =>
    isPageLogin(pending)
      ? pending.requester || undefined
      : clientName(await as.lookupClient(pending.client_id), pending.client_id);

  const brake = routeBrakes(as);
  const throttle = brake.login;

  /** After the provider vouched for the person: the allowlist, the audit, the session. */
  const admit = async (
    reply: FastifyReply,
    login: UpstreamLogin,
    pending: PendingLogin,
  ): Promise<boolean> => {
    const { user } = login;
    const access = idp.checkAccess(user);
    if (!access.allowed) {
      as.audit.emit({ type: "login.denied", user: user.login, provider: idp.type, reason: access.reason });
      await refuseLogin(reply, as, idp, pending, user, access.reason);
      return false;
    }
    as.audit.emit({ type: "login.succeeded", user: user.login, provider: idp.type });
    await as.liveness.remember(login);
    const token = await interactions.createSession(user);
    setCookie(reply, SESSION_COOKIE, token, { ...scope, maxAgeSeconds: parts.config.session.ttl });
    return true;
  };

  /**
   * The browser's session, its person re-checked with the provider when due (liveness.ts):
   * undefined when there is none or it was just ended (they sign in again); a 503 page already
   * sent when the provider cannot be asked past the outage bound.
   */
  const liveSession = async (
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<{ user: UserIdentity; authTime: number; checkedAt: number } | "answered" | undefined> => {
    const token = readCookie(request, SESSION_COOKIE);
    const session = await interactions.getSession(token);
    if (!session) return undefined;
    const confirmed = await as.liveness.confirm(session.user, session.auth_time, "session");
    if (confirmed.outcome === "ended") {
      setCookie(reply, SESSION_COOKIE, "", { ...scope, maxAgeSeconds: 0 });
      return undefined;
    }
    if (confirmed.outcome === "unavailable") {
      reply.header("retry-after", String(confirmed.retryAfterSeconds));
      page(
        reply,
        503,
        errorPage(
          `${idp.displayName} cannot be reached`,
          "The gateway could not check your sign-in with your identity provider. Try again in a minute.",
        ),
      );
      return "answered";
    }
    return { user: confirmed.user, authTime: session.auth_time, checkedAt: confirmed.checkedAt };
  };

  /** Consent (or the remembered decision) for a logged-in user; ends in a redirect or a page. */
  const decide = async (
    reply: FastifyReply,
    pending: PendingAuthorization,
    user: UserIdentity,
    authTime: number,
    checkedAt = authTime,
  ) => {
    const access = idp.checkAccess(user);
    if (!access.allowed) return page(reply, 403, errorPage("Access denied", access.reason));
    const client = await as.lookupClient(pending.client_id);
    if (!client)
      return page(reply, 400, errorPage("Unknown application", "The application's registration is gone."));
    if (
      parts.config.consent.remember &&
      (await interactions.hasConsent(user.sub, client.client_id, pending.scope, pending.resources))
    ) {
      const target = await as.issueCode(pending, user, authTime, checkedAt);
      return target ? reply.redirect(target, 302) : page(reply, 400, EXPIRED());
    }
    return page(
      reply,
      200,
      consentPage({
        base,
        request: pending.id,
        csrf: pending.csrf,
        clientName: clientName(client, client.client_id),
        clientId: client.client_id,
        redirectHost: redirectHost(pending.redirect_uri),
        unverified: client.source !== "admin",
        user: user.login,
        services: pending.resources.map((r) => parts.resources.serviceFor(r) ?? r),
        scopes: pending.scope,
      }),
    );
  };

  /** Signed in: on to consent, or back to the gateway page that asked for the sign-in. */
  const afterLogin = async (
    reply: FastifyReply,
    pending: PendingLogin,
    user: UserIdentity,
    authTime: number,
  ) => {
    if (!isPageLogin(pending)) return decide(reply, pending, user, authTime);
    await interactions.finishPending(pending.id);
    return reply.redirect(at(pending.return_to), 303);
  };

  app.get("/authorize", { ...PERSON, preHandler: brake.authorize }, async (request, reply) => {
    try {
      const { request: validated } = await validateAuthorizationRequest(
        request.query as Form,
        as.authorizeDeps,
      );
      const pending = await interactions.createPending(validated, browserToken(request, reply));
      const session = await liveSession(request, reply);
      if (session === "answered") return reply;
      if (session) return decide(reply, pending, session.user, session.authTime, session.checkedAt);
      return reply.redirect(at(`/login?request=${encodeURIComponent(pending.id)}`), 302);
    } catch (err) {
      if (err instanceof AuthorizePageError) return page(reply, 400, errorPage(err.title, err.detail));
      if (err instanceof AuthorizeRedirectError) {
        const { error } = err;
        return reply.redirect(
          authorizationResponseUrl(err.redirectUri, as.issuer, {
            error: error.code,
            error_description: error.description,
            state: err.state,
          }),
          302,
        );
      }
      throw err;
    }
  });

  // A sign-in with no client behind it, for the landing and account pages: it ends on the page
  // named in `next` (one of two the gateway chose, never a URL from the request).
  app.get<{ Querystring: { next?: string } }>(
    "/signin",
    { ...PERSON, preHandler: brake.authorize },
    async (request, reply) => {
      const next = request.query.next === "/" ? "/" : "/account";
      if (await interactions.getSession(readCookie(request, SESSION_COOKIE)))
        return reply.redirect(at(next), 303);
      const pending = await interactions.createPageLogin(
        { return_to: next, requester: "" },
        browserToken(request, reply),
      );
      return reply.redirect(at(`/login?request=${encodeURIComponent(pending.id)}`), 302);
    },
  );

  app.get<{ Querystring: { request?: string } }>("/login", PERSON, async (request, reply) => {
    const pending = await loginFor(request, request.query.request);
    if (!pending) return page(reply, 400, EXPIRED());
    if (idp.kind === "password") {
      return page(
        reply,
        200,
        loginPage({
          base,
          request: pending.id,
          csrf: pending.csrf,
          clientName: await requesterName(pending),
        }),
      );
    }
    pending.upstream_verifier = newSecret();
    await interactions.save(pending);
    const target = await idp.authorizationUrl({
      state: pending.id,
      redirectUri: `${as.issuer}/callback`,
      codeChallenge: s256(pending.upstream_verifier),
    });
    return reply.redirect(target, 302);
  });

  app.post("/login", { ...PERSON, bodyLimit: OAUTH_BODY_LIMIT }, async (request, reply) => {
    const form = (request.body ?? {}) as Form;
    const pending = await loginFor(request, field(form, "request"));
    if (!pending || idp.kind !== "password") return page(reply, 400, EXPIRED());
    if (!constantTimeEqual(field(form, "csrf"), pending.csrf)) {
      return page(
        reply,
        403,
        errorPage("Request refused", "The form was not sent from this sign-in page (CSRF check failed)."),
      );
    }
    const username = field(form, "username") ?? "";
    const again = async (status: number, error: string) =>
      page(
        reply,
        status,
        loginPage({
          base,
          request: pending.id,
          csrf: pending.csrf,
          clientName: await requesterName(pending),
          username,
          error,
        }),
      );
    const braked = await throttle.blocked(request.ip, username);
    if (braked) {
      reply.header("retry-after", String(braked.retryAfter));
      return again(429, `Too many failed sign-ins. Try again in ${waitText(braked.retryAfter)}.`);
    }
    const user = await idp.verify(username, field(form, "password") ?? "");
    if (!user) {
      await throttle.failed(request.ip, username);
      as.audit.emit({
        type: "login.failed",
        user: username.slice(0, 64),
        provider: idp.type,
        reason: "wrong credentials",
      });
      return again(401, "Wrong user name or password.");
    }
    if (!(await admit(reply, { user }, pending))) return reply;
    return afterLogin(reply, pending, user, Math.floor(Date.now() / 1000));
  });

  app.get<{ Querystring: Record<string, string | undefined> }>(
    "/callback",
    PERSON,
    async (request, reply) => {
      const { state, code, error, error_description: description } = request.query;
      const pending = await loginFor(request, state);
      if (!pending || idp.kind !== "redirect" || !pending.upstream_verifier)
        return page(reply, 400, EXPIRED());
      if (error || !code) {
        await interactions.finishPending(pending.id);
        const why = `${idp.displayName} sign-in did not complete${description ? `: ${description}` : ""}`;
        if (isPageLogin(pending)) return page(reply, 403, errorPage("Sign-in did not complete", why));
        return reply.redirect(
          authorizationResponseUrl(pending.redirect_uri, as.issuer, {
            error: "access_denied",
            error_description: why,
            state: pending.state,
          }),
          302,
        );
      }
      let login: UpstreamLogin;
      try {
        login = await idp.signIn({
          code,
          redirectUri: `${as.issuer}/callback`,
          codeVerifier: pending.upstream_verifier,
        });
      } catch (err) {
        if (err instanceof IdpError)
          return page(reply, 502, errorPage(`${idp.displayName} sign-in failed`, err.message));
        throw err;
      }
      if (!(await admit(reply, login, pending))) return reply;
      return afterLogin(reply, pending, login.user, Math.floor(Date.now() / 1000));
    },
  );

  app.get<{ Querystring: { request?: string } }>("/consent", PERSON, async (request, reply) => {
    const pending = await pendingFor(request, request.query.request);
    if (!pending) return page(reply, 400, EXPIRED());
    const session = await liveSession(request, reply);
    if (session === "answered") return reply;
    if (!session) return reply.redirect(at(`/login?request=${encodeURIComponent(pending.id)}`), 302);
    return decide(reply, pending, session.user, session.authTime, session.checkedAt);
  });

  app.post("/consent", { ...PERSON, bodyLimit: OAUTH_BODY_LIMIT }, async (request, reply) => {
    const form = (request.body ?? {}) as Form;
    const pending = await pendingFor(request, field(form, "request"));
    if (!pending) return page(reply, 400, EXPIRED());
    if (!constantTimeEqual(field(form, "csrf"), pending.csrf)) {
      return page(
        reply,
        403,
        errorPage("Request refused", "The form was not sent from this consent page (CSRF check failed)."),
      );
    }
    const session = await liveSession(request, reply);
    if (session === "answered") return reply;
    if (!session) return reply.redirect(at(`/login?request=${encodeURIComponent(pending.id)}`), 302);
    const access = idp.checkAccess(session.user);
    if (!access.allowed) return page(reply, 403, errorPage("Access denied", access.reason));
    if (field(form, "decision") !== "allow") {
      await interactions.finishPending(pending.id);
      as.audit.emit({ type: "consent.denied", user: session.user.login, client_id: pending.client_id });
      return reply.redirect(
        authorizationResponseUrl(pending.redirect_uri, as.issuer, {
          error: "access_denied",
          error_description: "the user denied the request",
          state: pending.state,
        }),
        302,
      );
    }
    if (parts.config.consent.remember) {
      await interactions.rememberConsent(
        session.user.sub,
        pending.client_id,
        pending.scope,
        pending.resources,
      );
    }
    as.audit.emit({
      type: "consent.granted",
      user: session.user.login,
      client_id: pending.client_id,
      scope: pending.scope,
      resources: pending.resources,
      remembered: parts.config.consent.remember,
    });
    const target = await as.issueCode(pending, session.user, session.authTime, session.checkedAt);
    return target ? reply.redirect(target, 302) : page(reply, 400, EXPIRED());
  });
}
