/** One module per grant type, all behind this interface; token.ts picks one by `grant_type`. */
import type { GrantEndReason } from "../../ops/audit.js";
import type { ClientRecord } from "../clients.js";
import type { TokenResponse } from "../issuer.js";

export interface TokenRequest {
  /** The authenticated (or, for public clients, identified) client. */
  client: ClientRecord;
  /** Single-valued form parameters. */
  params: Record<string, string | undefined>;
  /** Every `resource` parameter (RFC 8707 allows several), canonicalised. */
  resources: string[];
}

/** Ends a grant: revokes every token issued from it and forgets it; the reason goes to the audit log. */
export type EndGrant = (sid: string, reason: GrantEndReason) => Promise<void>;

export interface GrantHandler {
  readonly grantType: string;
  handle(request: TokenRequest): Promise<TokenResponse>;
}

/** Scope strings to a de-duplicated list. */
export function splitScope(scope: string | undefined): string[] {
  return [...new Set((scope ?? "").split(" ").filter(Boolean))];
}
