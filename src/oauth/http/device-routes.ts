/**
 * The device page (RFC 8628 §3.3), where a person approves a machine without a browser:
 *
 *   GET  /device[?user_code=…]  not signed in: the usual login (a page sign-in that comes back
 *                               here); signed in: the code form, filled in from the link if any
 *   POST /device                the code -> a consent page naming the client and the services
 *   POST /device/consent        allow or deny
 *
 * Every code typed is checked again at each step, under the entry brake (rate_limits.device),
 * so the consent form is no way around it. A code from a link is never approved in one click:
 * the form and then the consent page, which shows the code again, ask to compare it with the
 * device (§5.4). Forms carry a token derived from the session cookie (no state to keep) and,
 * as PERSON routes, pass the same-origin form check.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { publicPath } from "../../config/public-path.js";
import { constantTimeEqual, hashSecret, newSecret } from "../../crypto/secrets.js";
import { deviceCodePage, deviceConsentPage, errorPage, noticePage } from "../../web/pages.js";
import type { FoundDevice } from "../device-store.js";
import type { Session } from "../interaction.js";
import type { AuthorizationServer } from "../server.js";
import { formatUserCode, normalizeUserCode } from "../user-code.js";
import { routeBrakes } from "./brakes.js";
import { cookiesFor, readCookie, setCookie } from "./cookies.js";
import { OAUTH_BODY_LIMIT } from "./endpoints.js";
import { PERSON, page } from "./error-handler.js";
import { waitText } from "./interaction-routes.js";

type Form = Record<string, unknown>;

const field = (form: Form, name: string): string | undefined => {
  const v = form[name];
  return typeof v === "string" ? v : undefined;
};

/** How the login page names who asks for a sign-in started here. */
const REQUESTER = "A device";

interface SignedIn {
  session: Session;
  /** The forms' anti-CSRF token: only a page that could read the session cookie can know it. */
  csrf: string;
}

const CSRF_FAILED = () =>
  errorPage("Request refused", "The form was not sent from this device page (CSRF check failed).");

export async function registerDeviceRoutes(app: FastifyInstance, as: AuthorizationServer): Promise<void> {
  const {
    names: { browser: BROWSER_COOKIE, session: SESSION_COOKIE },
    scope,
  } = cookiesFor(as.issuer);
  const { interactions, devices, parts } = as;
  const { idp } = parts;
  const brakes = routeBrakes(as);
  const entry = brakes.deviceEntry;
  /** The gateway's own paths as the browser reaches them (under public_url's path). */
  const base = publicPath(as.issuer);
  const at = (path: string) => `${base}${path}`;

  const signedIn = async (request: FastifyRequest): Promise<SignedIn | undefined> => {
    const token = readCookie(request, SESSION_COOKIE);
    const session = await interactions.getSession(token);
    if (!token || !session) return undefined;
    // A reused session is re-checked with the provider when due (liveness.ts), as at /authorize;
    // one it no longer vouches for has just been ended, and one it cannot be asked about signs in.
    const confirmed = await as.liveness.confirm(session.user, session.auth_time, "session");
    if (confirmed.outcome !== "current") return undefined;
    return { session: { ...session, user: confirmed.user }, csrf: hashSecret(`device-form:${token}`) };
  };

  const browserToken = (request: FastifyRequest, reply: FastifyReply): string => {
    const existing = readCookie(request, BROWSER_COOKIE);
    if (existing) return existing;
    const token = newSecret();
    setCookie(reply, BROWSER_COOKIE, token, scope);
    return token;
  };

  const codeForm = (
    reply: FastifyReply,
    status: number,
    me: SignedIn,
    typed: string | undefined,
    error: string,
  ) =>
    page(
      reply,
      status,
      deviceCodePage({
        base,
        csrf: me.csrf,
        user: me.session.user.login,
        userCode: typed?.slice(0, 20),
        error,
      }),
    );

  /**
   * The request a typed code names, under the entry brake; otherwise the form again, saying why
   * (and undefined). Only well-formed codes are counted: eight letters that name nothing.
   */
  const lookUp = async (
    request: FastifyRequest,
    reply: FastifyReply,
    me: SignedIn,
    typed: string | undefined,
  ): Promise<{ found: FoundDevice; userCode: string } | undefined> => {
    const code = normalizeUserCode(typed);
    if (!code) {
      codeForm(reply, 400, me, typed, "A code is eight letters, like BCDF-GHJK.");
      return undefined;
    }
    const user = me.session.user.login;
    const braked = await entry.blocked(request.ip, user);
    if (braked) {
      reply.header("retry-after", String(braked.retryAfter));
      codeForm(reply, 429, me, typed, `Too many wrong codes. Try again in ${waitText(braked.retryAfter)}.`);
      return undefined;
    }
    const found = await devices.findByUserCode(code);
    if (!found) {
      await entry.failed(request.ip, user);
      codeForm(
        reply,
        400,
        me,
        typed,
        "That code is not valid, or it has expired. Check your device's screen.",
      );
      return undefined;
    }
    return { found, userCode: formatUserCode(code) };
  };

  /** The allowlist, checked again whenever a device is about to be approved. */
  const refusedAccess = (reply: FastifyReply, me: SignedIn): FastifyReply | undefined => {
    const access = idp.checkAccess(me.session.user);
    return access.allowed ? undefined : page(reply, 403, errorPage("Access denied", access.reason));
  };

  app.get<{ Querystring: { user_code?: unknown } }>(
    "/device",
    // Each visit before sign-in keeps a pending sign-in in the store, as /authorize does.
    { ...PERSON, preHandler: brakes.authorize },
    async (request, reply) => {
      const raw = request.query.user_code;
      const code = normalizeUserCode(typeof raw === "string" ? raw : undefined);
      const shown = code ? formatUserCode(code) : undefined;
      const me = await signedIn(request);
      if (!me) {
        const pending = await interactions.createPageLogin(
          { return_to: shown ? `/device?user_code=${shown}` : "/device", requester: REQUESTER },
          browserToken(request, reply),
        );
        return reply.redirect(at(`/login?request=${encodeURIComponent(pending.id)}`), 302);
      }
      return page(
        reply,
        200,
        deviceCodePage({
          base,
          csrf: me.csrf,
          user: me.session.user.login,
          userCode: shown,
          fromLink: Boolean(shown),
        }),
      );
    },
  );

  app.post("/device", { ...PERSON, bodyLimit: OAUTH_BODY_LIMIT }, async (request, reply) => {
    const form = (request.body ?? {}) as Form;
    const me = await signedIn(request);
    if (!me) return reply.redirect(at("/device"), 303);
    if (!constantTimeEqual(field(form, "csrf"), me.csrf)) return page(reply, 403, CSRF_FAILED());
    const refused = refusedAccess(reply, me);
    if (refused) return refused;
    const typed = await lookUp(request, reply, me, field(form, "user_code"));
    if (!typed) return reply;
    const { request: asked } = typed.found;
    const client = await as.lookupClient(asked.client_id);
    if (!client)
      return page(reply, 400, errorPage("Unknown application", "The application's registration is gone."));
    return page(
      reply,
      200,
      deviceConsentPage({
        base,
        csrf: me.csrf,
        userCode: typed.userCode,
        clientName: client.client_name ?? client.client_id,
        clientId: client.client_id,
        unverified: client.source !== "admin",
        user: me.session.user.login,
        services: asked.resources.map((r) => parts.resources.serviceFor(r) ?? r),
        scopes: asked.scope,
      }),
    );
  });

  app.post("/device/consent", { ...PERSON, bodyLimit: OAUTH_BODY_LIMIT }, async (request, reply) => {
    const form = (request.body ?? {}) as Form;
    const me = await signedIn(request);
    if (!me) return reply.redirect(at("/device"), 303);
    if (!constantTimeEqual(field(form, "csrf"), me.csrf)) return page(reply, 403, CSRF_FAILED());
    const refused = refusedAccess(reply, me);
    if (refused) return refused;
    const typed = await lookUp(request, reply, me, field(form, "user_code"));
    if (!typed) return reply;
    const { found } = typed;
    const { user, auth_time } = me.session;
    const { client_id, scope, resources } = found.request;
    const allow = field(form, "decision") === "allow";
    const answered = await devices.decide(
      found,
      allow
        ? { approved: true, user, auth_time, at: Date.now() }
        : { approved: false, user: user.login, at: Date.now() },
    );
    if (!answered)
      return page(
        reply,
        409,
        errorPage("Already answered", "This code was approved or denied a moment ago."),
      );
    if (!allow) {
      as.audit.emit({ type: "device.denied", user: user.login, client_id });
      return page(reply, 200, noticePage("Request denied", "The device was not given access."));
    }
    as.audit.emit({ type: "device.approved", user: user.login, client_id, scope, resources });
    return page(
      reply,
      200,
      noticePage("Device connected", "The device can now use your services. You can go back to it."),
    );
  });
}
