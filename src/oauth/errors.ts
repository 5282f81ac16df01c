/**
 * OAuth errors (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 8707 §2, RFC 7009, RFC 8628 §3.5). One class carries the
 * wire code, the HTTP status, the public description, and a private cause for the log only.
 * HTTP adapters convert it in one place; anything else becomes a generic server_error.
 */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "unsupported_response_type"
  | "invalid_scope"
  | "invalid_target"
  | "access_denied"
  | "server_error"
  | "temporarily_unavailable"
  | "invalid_redirect_uri"
  | "invalid_client_metadata"
  | "invalid_token"
  | "unsupported_token_type"
  // The device grant's answers while a person has not finished (RFC 8628 §3.5).
  | "authorization_pending"
  | "slow_down"
  | "expired_token";

const DEFAULT_STATUS: Partial<Record<OAuthErrorCode, number>> = {
  invalid_client: 401,
  invalid_token: 401,
  server_error: 500,
  temporarily_unavailable: 503,
};

export class OAuthError extends Error {
  override readonly name = "OAuthError";
  readonly status: number;
  /** Extra response headers, e.g. the WWW-Authenticate challenge of a 401. */
  readonly headers: Record<string, string>;

  constructor(
    readonly code: OAuthErrorCode,
    /** Shown to the client as error_description: no secrets, no internals. */
    readonly description: string,
    options: { status?: number; cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(`${code}: ${description}`, { cause: options.cause });
    this.status = options.status ?? DEFAULT_STATUS[code] ?? 400;
    this.headers = options.headers ?? {};
  }

  toJSON(): { error: string; error_description: string } {
    return { error: this.code, error_description: this.description };
  }
}

export const invalidRequest = (d: string) => new OAuthError("invalid_request", d);
export const invalidGrant = (d: string) => new OAuthError("invalid_grant", d);
export const invalidClient = (d: string) => new OAuthError("invalid_client", d);
export const invalidScope = (d: string) => new OAuthError("invalid_scope", d);
export const invalidTarget = (d: string) => new OAuthError("invalid_target", d);
