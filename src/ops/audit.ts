/**
 * Audit events: every grant, refusal and revocation, as typed records. The authorization
 * server and the gateway emit them through this interface only; app wiring sends them to the
 * log (one JSON line each, `"audit": {...}`). Events name users, clients and grants, never a
 * token, code or secret.
 */
/** Why a grant was ended. */
export type GrantEndReason =
  | "code-replay"
  | "device-code-replay"
  | "refresh-reuse"
  | "refresh-other-client"
  | "user-not-allowed"
  | "revocation"
  | "admin"
  /** The person it was for revoked it on /account. */
  | "account";

/** Why all of a user's access was ended. */
export type UserEndReason = "removed" | "disabled" | "recheck";

export type AuditEvent =
  | { type: "client.registered"; client_id: string; client_name?: string; auth_method: string }
  | { type: "client.updated"; client_id: string }
  | { type: "client.deleted"; client_id: string }
  | { type: "login.succeeded"; user: string; provider: string }
  | { type: "login.failed"; user: string; provider: string; reason: string }
  | { type: "login.denied"; user: string; provider: string; reason: string }
  | {
      type: "consent.granted";
      user: string;
      client_id: string;
      scope: string[];
      resources: string[];
      remembered: boolean;
    }
  | { type: "consent.denied"; user: string; client_id: string }
  /** A device asked for codes (RFC 8628 §3.1); its person answers at /device. */
  | { type: "device.requested"; client_id: string; scope: string[]; resources: string[] }
  | { type: "device.approved"; user: string; client_id: string; scope: string[]; resources: string[] }
  | { type: "device.denied"; user: string; client_id: string }
  | {
      type: "token.issued";
      grant_type: string;
      user: string;
      client_id: string;
      sid: string;
      scope: string[];
      resources: string[];
    }
  | { type: "token.refused"; grant_type?: string; client_id?: string; error: string; description: string }
  | {
      type: "grant.revoked";
      sid: string;
      reason: GrantEndReason;
    }
  | { type: "token.revoked"; client_id: string; jti: string }
  | {
      /** Every grant, session and consent of a user ended; `at` says where a re-check found it. */
      type: "user.revoked";
      user: string;
      reason: UserEndReason;
      at?: string;
      grants: number;
      sessions: number;
      consents: number;
    }
  | {
      /** The identity provider could not be asked; the last verdict stood (or, past the bound, a 503). */
      type: "idp.recheck_unavailable";
      user: string;
      reason: string;
      outcome: "last-verdict" | "refused";
    }
  | {
      /** An abuse brake closed (once per rule, subject and window): what follows is refused with 429. */
      type: "rate.limited";
      rule: string;
      address?: string;
      user?: string;
      client_id?: string;
      retry_after: number;
    }
  | {
      type: "access.refused";
      service: string;
      status: number;
      reason: string;
      client_id?: string;
      user?: string;
      /** The client's address, as the request log names it (`trust_proxy`). */
      ip?: string;
    }
  | {
      /**
       * One tools/call on a service with a per-tool policy, once its answer is complete: never
       * its arguments or its result. `outcome`: ok, tool_error (the tool said isError),
       * input_required (a 2026-07-28 round trip), error (a JSON-RPC error or a failed
       * upstream), denied (the tool's policy), step_up (a scope missing), unknown (no answer
       * the gateway could read, e.g. the client left).
       */
      type: "tool.called";
      service: string;
      tool: string;
      outcome: string;
      user?: string;
      client_id?: string;
      /** The HTTP status the client got. */
      status: number;
      duration_ms: number;
      ip?: string;
    };

export interface Audit {
  emit(event: AuditEvent): void;
}

/** For tests and tools that do not audit. */
export const NO_AUDIT: Audit = { emit: () => undefined };

/** Sends events to a pino-style logger, at info level, under the `audit` key. */
export function logAudit(logger: { info(obj: object, msg?: string): void }): Audit {
  return { emit: (event) => logger.info({ audit: event }, event.type) };
}
