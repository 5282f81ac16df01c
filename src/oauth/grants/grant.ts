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
  /** What the handler's prepare() started for this request, if it has one. */
  prepared?: Promise<unknown>;
}

/** Ends a grant: revokes every token issued from it and forgets it; the reason goes to the audit log. */
export type EndGrant = (sid: string, reason: GrantEndReason) => Promise<void>;

export interface GrantHandler {
  readonly grantType: string;
  /**
   * Store reads that depend on the form alone, started before the client is authenticated so
   * that both reach the store together (one round trip on Redis). Reads only, never a write:
   * a request refused at authentication drops the result. handle() gets it as `prepared`;
   * undefined = nothing to start for this request.
   */
  prepare?(params: Record<string, string | undefined>): Promise<unknown> | undefined;
  handle(request: TokenRequest): Promise<TokenResponse>;
}

/** Scope strings to a de-duplicated list. */
export function splitScope(scope: string | undefined): string[] {
  return [...new Set((scope ?? "").split(" ").filter(Boolean))];
}
