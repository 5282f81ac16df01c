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
  /** The request's brakes, when they are left to the handler (GrantHandler.countsBrakes). */
  brakes?: TokenBrakes;
}

/**
 * The /token abuse brakes of one request (http/brakes.ts), counted exactly once: by count(), or
 * inside a store step a handler hands them to (forStep). Their refusal (429) is the answer
 * before anything the request would change.
 */
export interface TokenBrakes {
  /** Counts now in a store command of its own, unless counted already; rejects with the refusal. */
  count(): Promise<void>;
  /**
   * The count for a store step to take itself (undefined when counted already, or when nothing
   * is counted); from then on count() counts nothing. The step's counts go to `verdict`, which
   * throws the refusal.
   */
  forStep(): StepCount | undefined;
}

export interface StepCount {
  /** The counters' namespace, keys, TTLs and maxes: the step declines past a max. */
  ns: string;
  counters: Array<{ key: string; ttlSeconds: number; max: number }>;
  verdict(counts: number[]): void;
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
  /**
   * True when this handler counts the brakes itself, inside its own store step (TokenRequest
   * brakes), for requests whose client authenticates without writing anything: the count then
   * needs no command of its own. Asked per request.
   */
  countsBrakes?(params: Record<string, string | undefined>): boolean;
  handle(request: TokenRequest): Promise<TokenResponse>;
}

/** Scope strings to a de-duplicated list. */
export function splitScope(scope: string | undefined): string[] {
  return [...new Set((scope ?? "").split(" ").filter(Boolean))];
}
