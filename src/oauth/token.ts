/**
 * POST /token: authenticate the client, then hand the request to the grant handler registered
 * for its `grant_type`. Handlers come from a table built from config in app wiring.
 */
import type { ClientAuthenticator } from "./client-auth.js";
import type { ClientRecord } from "./clients.js";
import { invalidRequest, OAuthError } from "./errors.js";
import type { GrantHandler, TokenBrakes, TokenRequest } from "./grants/grant.js";
import type { TokenResponse } from "./issuer.js";
import { readParams } from "./params.js";

/** No brakes (rate_limits off, or a caller without a request): nothing to count. */
const NO_BRAKES: TokenBrakes = { count: () => Promise.resolve(), forStep: () => undefined };

export class TokenEndpoint {
  private readonly handlers: Map<string, GrantHandler>;

  constructor(
    handlers: GrantHandler[],
    private readonly clients: ClientAuthenticator,
    /** Records that the client completed a token request (ClientStore.markUsed). */
    private readonly markUsed: (client: ClientRecord) => Promise<void> = async () => undefined,
  ) {
    this.handlers = new Map(handlers.map((h) => [h.grantType, h]));
  }

  get grantTypes(): string[] {
    return [...this.handlers.keys()];
  }

  /**
   * `brakes` are the request's abuse brakes (http/brakes.ts), counted once. Usually the count
   * starts first and the grant's reads beside it, so that on Redis both travel in one round trip,
   * and nothing else happens until the brakes let the request through. A refusal (429) or a
   * store failure (503) of theirs is the answer whatever the form says; client authentication
   * (which may record an assertion's jti) and the grant itself (which rotates) come after it.
   *
   * A handler that counts the brakes inside its own store step (GrantHandler.countsBrakes: the
   * refresh step on Redis) gets them uncounted, for a client that authenticates without writing
   * anything (no assertion): one store command for the whole request. Whatever ends such a
   * request before its step still counts them first, so the answer is the same as above.
   */
  async handle(
    body: Record<string, unknown> | undefined,
    authorization: string | undefined,
    brakes: TokenBrakes = NO_BRAKES,
  ): Promise<TokenResponse> {
    let request: Omit<TokenRequest, "client"> & { grantType: string; handler: GrantHandler };
    try {
      request = this.read(body, authorization, brakes);
    } catch (err) {
      await brakes.count();
      throw err;
    }
    const { grantType, handler, ...rest } = request;
    try {
      if (!rest.brakes) await brakes.count();
      const client = await this.clients.authenticate(authorization, rest.params, "token");
      if (!client.grant_types.includes(grantType)) {
        throw new OAuthError(
          "unauthorized_client",
          `this client is not registered for the ${grantType} grant`,
        );
      }
      const response = await handler.handle({ client, ...rest });
      // The tokens are issued (a refresh token may have rotated): a failed mark must not lose
      // them. It is retried by the client's next token request, which finds the mark missing.
      await this.markUsed(client).catch(() => undefined);
      return response;
    } catch (err) {
      // Counted already (most requests) this is nothing; else the brakes' verdict comes first.
      await brakes.count();
      throw err;
    }
  }

  /**
   * The form, the grant it asks for, and either the brakes' count with that grant's reads
   * started beside it (prepare), or the brakes left to the handler (countsBrakes).
   */
  private read(
    body: Record<string, unknown> | undefined,
    authorization: string | undefined,
    brakes: TokenBrakes,
  ) {
    const { params, resources } = readParams(body);
    const grantType = params.grant_type;
    if (!grantType) throw invalidRequest("grant_type is required");
    const handler = this.handlers.get(grantType);
    if (!handler) throw new OAuthError("unsupported_grant_type", `grant_type ${grantType} is not supported`);
    if (handler.countsBrakes?.(params) && this.clients.authenticatesLocally(authorization, params))
      return { grantType, handler, params, resources, brakes };
    // Refused below, the count and the reads are awaited there or dropped.
    brakes.count().catch(() => undefined);
    const prepared = handler.prepare?.(params);
    prepared?.catch(() => undefined);
    return { grantType, handler, params, resources, ...(prepared ? { prepared } : {}) };
  }
}
