/**
 * A second line behind the CSRF token and SameSite cookies: every form a person posts to the
 * gateway (login, consent, sign-out, and any later one marked `PERSON`) must come from the
 * gateway's own pages. Browsers say where a request comes from in `Sec-Fetch-Site` (Fetch
 * Metadata) and `Origin`; a POST with neither is not from a browser page, and is refused too.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { errorPage } from "../../web/pages.js";
import { isPersonRoute, page } from "./error-handler.js";

/** Whether a form POST's own headers place it on `origin` (the issuer's origin). */
export function fromOwnPage(headers: FastifyRequest["headers"], origin: string): boolean {
  const site = headers["sec-fetch-site"];
  // Fetch Metadata, when sent, is the browser's own verdict. `same-site` is not enough: with
  // host routing a sibling subdomain serves an upstream's content.
  if (typeof site === "string") return site === "same-origin";
  const sent = headers.origin;
  return typeof sent === "string" && sent.toLowerCase() === origin;
}

/** onRequest hook for the authorization server's subtree. */
export function sameOriginForms(issuer: string) {
  const origin = new URL(issuer).origin.toLowerCase();
  return (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    if (request.method !== "POST" || !isPersonRoute(request) || fromOwnPage(request.headers, origin)) {
      done();
      return;
    }
    page(reply, 403, errorPage("Request refused", "The form was not sent from one of this gateway's pages."));
  };
}
