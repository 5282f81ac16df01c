/**
 * POST /revoke (RFC 7009). Revoking a refresh token ends its whole grant, access tokens
 * included (§2.1 SHOULD); revoking an access token ends that token. Unknown tokens, and
 * tokens of another client, answer 200 like success so nothing is learnt by probing.
 */
import type { Audit } from "../ops/audit.js";
import { InvalidAccessToken, looksLikeJwt, verifyAccessToken } from "../tokens/verify.js";
import { invalidRequest, OAuthError } from "./errors.js";
import type { EndGrant } from "./grants/grant.js";
import type { TokenEndpointDeps } from "./introspect.js";
import { readParams } from "./params.js";

export class RevocationEndpoint {
  constructor(private readonly deps: TokenEndpointDeps & { endGrant: EndGrant; audit: Audit }) {}

  async handle(body: Record<string, unknown> | undefined, authorization: string | undefined): Promise<void> {
    const { params } = readParams(body);
    const client = await this.deps.clients.authenticate(authorization, params, "revoke");
    const token = params.token;
    if (!token) throw invalidRequest("token is required");
    const hint = params.token_type_hint;
    if (hint !== undefined && hint !== "access_token" && hint !== "refresh_token") {
      throw new OAuthError("unsupported_token_type", `token_type_hint ${hint} is not supported`);
    }
    if (looksLikeJwt(token)) {
      await this.revokeAccessToken(token, client.client_id);
      return;
    }
    const refresh = await this.deps.grants.peekRefresh(token);
    if (refresh && refresh.client_id === client.client_id) {
      await this.deps.endGrant(refresh.sid, "revocation");
      await this.deps.grants.takeRefresh(token);
    }
  }

  private async revokeAccessToken(token: string, clientId: string): Promise<void> {
    try {
      const claims = await verifyAccessToken(token, this.deps.keys, this.deps.issuer, { ignoreExpiry: true });
      if (claims.client_id !== clientId) return;
      await this.deps.revocations.revokeAccessToken(claims.jti, claims.exp);
      this.deps.audit.emit({ type: "token.revoked", client_id: clientId, jti: claims.jti });
    } catch (err) {
      if (!(err instanceof InvalidAccessToken)) throw err;
    }
  }
}
