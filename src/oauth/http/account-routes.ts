/**
 * The signed-in person's pages: `/account` (the applications they allowed, each with Revoke)
 * and `/logout` (GET asks, POST signs out). Every POST carries the session's anti-CSRF token
 * (person-session.ts) and, being a PERSON route, passes the same-origin rule first
 * (form-origin.ts). Revoking goes through AccountGrants, which ends only the person's own grants.
 */
import type { FastifyInstance } from "fastify";
import { publicPath } from "../../config/public-path.js";
import { accountPage, logoutPage, signedOutPage } from "../../web/account.js";
import { errorPage } from "../../web/pages.js";
import { AccountGrants } from "../account.js";
import type { AuthorizationServer } from "../server.js";
import { OAUTH_BODY_LIMIT } from "./endpoints.js";
import { PERSON, page } from "./error-handler.js";
import { personSessions } from "./person-session.js";

type Form = Record<string, unknown>;

/** The sign-in with no client behind it (interaction-routes.ts), back to this page. */
const SIGN_IN = "/signin?next=/account";

const CSRF_REFUSED = () =>
  errorPage("Request refused", "The form was not sent from this session's page (CSRF check failed).");

export async function registerAccountRoutes(app: FastifyInstance, as: AuthorizationServer): Promise<void> {
  const sessions = personSessions(as);
  const grants = new AccountGrants(as);
  const form = { ...PERSON, bodyLimit: OAUTH_BODY_LIMIT };
  /** public_url's path: the pages' links and this file's redirects start with it. */
  const base = publicPath(as.issuer);

  app.get<{ Querystring: { revoked?: string } }>("/account", PERSON, async (request, reply) => {
    const signedIn = await sessions.current(request);
    if (!signedIn)
      return page(
        reply,
        200,
        signedOutPage(
          "Your applications",
          "You are not signed in. Sign in to see the applications you allowed.",
          base,
          SIGN_IN,
        ),
      );
    const { user } = signedIn.session;
    return page(
      reply,
      200,
      accountPage({
        base,
        user: user.login,
        csrf: signedIn.csrf,
        grants: await grants.list(user),
        notice: request.query.revoked === "1" ? "Access revoked." : undefined,
      }),
    );
  });

  app.post("/account/revoke", form, async (request, reply) => {
    const body = (request.body ?? {}) as Form;
    const signedIn = await sessions.current(request);
    if (!signedIn)
      return page(
        reply,
        401,
        signedOutPage("Signed out", "Your session has ended; sign in again to revoke access.", base, SIGN_IN),
      );
    if (!sessions.formFromSession(signedIn, body.csrf)) return page(reply, 403, CSRF_REFUSED());
    const sid = typeof body.grant === "string" ? body.grant : "";
    if (!(await grants.revoke(signedIn.session.user, sid)))
      return page(
        reply,
        404,
        errorPage("Nothing to revoke", "That access is already gone, or it is not yours."),
      );
    // Post/redirect/get: a reload does not post the form again.
    return reply.redirect(`${base}/account?revoked=1`, 303);
  });

  app.get("/logout", PERSON, async (request, reply) => {
    const signedIn = await sessions.current(request);
    if (!signedIn)
      return page(reply, 200, signedOutPage("Signed out", "You are not signed in to the gateway.", base));
    return page(reply, 200, logoutPage({ base, user: signedIn.session.user.login, csrf: signedIn.csrf }));
  });

  app.post("/logout", form, async (request, reply) => {
    const signedIn = await sessions.current(request);
    // Without a session there is nothing to end, and nothing a forged form could do.
    if (signedIn && !sessions.formFromSession(signedIn, ((request.body ?? {}) as Form).csrf))
      return page(reply, 403, CSRF_REFUSED());
    await sessions.end(request, reply);
    return page(
      reply,
      200,
      signedOutPage("Signed out", "You are signed out of the gateway on this browser.", base),
    );
  });
}
