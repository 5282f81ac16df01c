/**
 * WWW-Authenticate challenges (RFC 6750 §3, RFC 9728 §5.1). Every 401/403 of a protected
 * service names its protected resource metadata, so an MCP client can discover the
 * authorization server from the challenge alone.
 */

export interface ChallengeParams {
  /** URL of the RFC 9728 metadata document for the resource. */
  resourceMetadata?: string;
  /** Scopes the resource needs (space-joined into `scope`). */
  scopes?: readonly string[];
  /** RFC 6750 error code: `invalid_token`, `insufficient_scope`, `invalid_request`, … */
  error?: string;
  /** Human-readable, never contains the token. */
  description?: string;
}

/** quoted-string per RFC 9110 §5.6.4; control characters cannot be quoted, so they are dropped. */
function quote(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  const clean = value.replace(/[\u0000-\u001f\u007f]/g, " ").replace(/[^\u0020-\u00ff]/g, "?");
  return `"${clean.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** Builds `Bearer resource_metadata="…", scope="…", error="…", error_description="…"`. */
export function bearerChallenge(params: ChallengeParams): string {
  const parts: string[] = [];
  if (params.resourceMetadata) parts.push(`resource_metadata=${quote(params.resourceMetadata)}`);
  if (params.scopes && params.scopes.length > 0) parts.push(`scope=${quote(params.scopes.join(" "))}`);
  if (params.error) parts.push(`error=${quote(params.error)}`);
  if (params.description) parts.push(`error_description=${quote(params.description)}`);
  return parts.length > 0 ? `Bearer ${parts.join(", ")}` : "Bearer";
}
