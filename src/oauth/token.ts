/**
 * POST /token: authenticate the client, then hand the request to the grant handler registered
 * for its `grant_type`. Handlers come from a table built from config in app wiring.
 */
import type { ClientAuthenticator } from "./client-auth.js";
import type { ClientRecord } from "./clients.js";
import { invalidRequest, OAuthError } from "./errors.js";
import type { GrantHandler, TokenRequest } from "./grants/grant.js";
import type { TokenResponse } from "./issuer.js";
import { readParams } from "./params.js";

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
   * `admitted` is the verdict of the abuse brakes (http/brakes.ts), whose count is already on
   * its way: the grant's reads start beside it, so that on Redis the count and the reads travel
   * in one round trip, and nothing else happens until the brakes let the request through. A
   * refusal (429) or a store failure (503) of theirs is the answer whatever the form says, as
   * when they ran before the handler; client authentication (which may record an assertion's
   * jti) and the grant itself (which rotates) come after it.
   */
  async handle(
    body: Record<string, unknown> | undefined,
    authorization: string | undefined,
    admitted: Promise<void> = Promise.resolve(),
  ): Promise<TokenResponse> {
    let request: Omit<TokenRequest, "client"> & { grantType: string; handler: GrantHandler };
    try {
      request = this.read(body);
    } catch (err) {
      await admitted;
      throw err;
    }
    await admitted;
    const { grantType, handler, ...rest } = request;
    const client = await this.clients.authenticate(authorization, rest.params, "token");
    if (!client.grant_types.includes(grantType)) {
      throw new OAuthError("unauthorized_client", `this client is not registered for the ${grantType} grant`);
    }
    const response = await handler.handle({ client, ...rest });
    // The tokens are issued (a refresh token may have rotated): a failed mark must not lose
    // them. It is retried by the client's next token request, which finds the mark missing.
    await this.markUsed(client).catch(() => undefined);
    return response;
  }

  /** The form, the grant it asks for, and that grant's reads, started (prepare). */
  private read(body: Record<string, unknown> | undefined) {
    const { params, resources } = readParams(body);
    const grantType = params.grant_type;
    if (!grantType) throw invalidRequest("grant_type is required");
    const handler = this.handlers.get(grantType);
    if (!handler) throw new OAuthError("unsupported_grant_type", `grant_type ${grantType} is not supported`);
    const prepared = handler.prepare?.(params);
    // Refused below, the reads are dropped: their failure is not this request's answer.
    prepared?.catch(() => undefined);
    return { grantType, handler, params, resources, ...(prepared ? { prepared } : {}) };
  }
}
