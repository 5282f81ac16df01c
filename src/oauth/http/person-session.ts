/**
 * The browser session of the person at the gateway's own pages (landing, account, sign-out):
 * the session cookie set at login (cookies.ts), the session it names (interaction.ts), and the
 * anti-CSRF token of that session's forms.
 *
 * The token is HMAC-SHA256 keyed by the session cookie's secret, so it needs no storage, is
 * different for every session, and can be computed only by someone who holds the cookie (which
 * is HttpOnly: a page on another site can neither read it nor the token). Forms carry it; the
 * routes compare it in constant time, and the same-origin rule (form-origin.ts) stands behind it.
 */
import { createHmac } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { constantTimeEqual } from "../../crypto/secrets.js";
import type { Session } from "../interaction.js";
import type { AuthorizationServer } from "../server.js";
import { cookiesFor, readCookie, setCookie } from "./cookies.js";

export interface SignedIn {
  session: Session;
  /** The anti-CSRF token for this session's forms. */
  csrf: string;
}

export interface PersonSessions {
  /** The signed-in person of this request, if their session is live. */
  current(request: FastifyRequest): Promise<SignedIn | undefined>;
  /** Whether a form's `csrf` field is this session's token. */
  formFromSession(signedIn: SignedIn, sent: unknown): boolean;
  /** Ends the session on the server and tells the browser to drop the cookie. */
  end(request: FastifyRequest, reply: FastifyReply): Promise<void>;
}

const csrfFor = (token: string) =>
  createHmac("sha256", token).update("mcpgw page forms v1").digest("base64url");

export function personSessions(as: AuthorizationServer): PersonSessions {
  const {
    names: { session: SESSION_COOKIE },
    scope,
  } = cookiesFor(as.issuer);
  return {
    async current(request) {
      const token = readCookie(request, SESSION_COOKIE);
      const session = await as.interactions.getSession(token);
      return session && token ? { session, csrf: csrfFor(token) } : undefined;
    },
    formFromSession(signedIn, sent) {
      return typeof sent === "string" && constantTimeEqual(sent, signedIn.csrf);
    },
    async end(request, reply) {
      await as.interactions.deleteSession(readCookie(request, SESSION_COOKIE));
      setCookie(reply, SESSION_COOKIE, "", { ...scope, maxAgeSeconds: 0 });
    },
  };
}
