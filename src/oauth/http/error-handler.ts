/**
 * The authorization server's one error converter (STYLE.md: errors by audience, decided once
 * per subtree). Routes a person opens in a browser (marked `PERSON`) get an HTML page; the
 * machine endpoints get RFC 6749 error JSON. A store outage is 503 with Retry-After in either
 * shape (`temporarily_unavailable` for machines), never a 500. Anything unexpected is logged
 * and answered generically: no stack, no internals.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import type { Audit } from "../../ops/audit.js";
import { StoreUnavailableError } from "../../store/errors.js";
import { errorPage, PAGE_HEADERS } from "../../web/pages.js";
import { OAuthError } from "../errors.js";

/** Route option for the pages a person uses: errors there are pages, not JSON. */
export const PERSON = { config: { audience: "person" } } as const;

/** Whether the matched route is one of the pages a person uses. */
export function isPersonRoute(request: FastifyRequest): boolean {
  return (request.routeOptions.config as { audience?: string } | undefined)?.audience === "person";
}

/** An HTML page in the pages' own frame and headers. */
export function page(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).headers(PAGE_HEADERS).send(body);
}

const UNAVAILABLE = "The gateway cannot reach its data store right now; try again in a few seconds.";

export function oauthErrorHandler(audit: Audit) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const person = isPersonRoute(request);

    if (error instanceof StoreUnavailableError) {
      request.log.warn({ err: error }, "store unavailable");
      reply.header("retry-after", String(error.retryAfterSeconds)).header("cache-control", "no-store");
      if (person) return page(reply, 503, errorPage("Temporarily unavailable", UNAVAILABLE));
      return reply.code(503).send({ error: "temporarily_unavailable", error_description: UNAVAILABLE });
    }

    if (error instanceof OAuthError) {
      if (request.routeOptions.url === "/token") auditRefusal(audit, request, error);
      if (person)
        return page(
          reply.headers(error.headers),
          error.status,
          errorPage("Request refused", error.description),
        );
      return reply
        .code(error.status)
        .headers(error.headers)
        .header("cache-control", "no-store")
        .send(error.toJSON());
    }

    const status = error.statusCode ?? 500;
    if (status >= 500) {
      request.log.error({ err: error }, "authorization server error");
      if (person)
        return page(
          reply,
          500,
          errorPage("Something went wrong", "The gateway could not handle this request."),
        );
      return reply
        .code(500)
        .send({ error: "server_error", error_description: "the server could not handle the request" });
    }
    // Framework refusals (body too large, bad JSON, wrong content type) in the audience's words.
    const description = describeFrameworkError(error);
    if (person) return page(reply, status, errorPage("Request refused", description));
    const code = request.url.startsWith("/register") ? "invalid_client_metadata" : "invalid_request";
    return reply.code(status).send({ error: code, error_description: description });
  };
}

/** A device polling for an answer (RFC 8628 §3.5) is told to wait, not refused: not audited. */
const WAITING = new Set(["authorization_pending", "slow_down"]);

function auditRefusal(audit: Audit, request: FastifyRequest, error: OAuthError): void {
  if (WAITING.has(error.code)) return;
  const body = (request.body ?? {}) as Record<string, unknown>;
  audit.emit({
    type: "token.refused",
    grant_type: typeof body.grant_type === "string" ? body.grant_type : undefined,
    client_id: typeof body.client_id === "string" ? body.client_id : undefined,
    error: error.code,
    description: error.description,
  });
}

function describeFrameworkError(error: FastifyError): string {
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return "the request body is too large";
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return "unsupported content type";
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return "the JSON body is empty";
    default:
      return error.code === "FST_ERR_CTP_INVALID_JSON_BODY" || error instanceof SyntaxError
        ? "the body is not valid JSON"
        : "the request is malformed";
  }
}
