/**
 * Refresh-token rotation as one atomic store operation (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2):
 * one live refresh token per grant, its immediate predecessor answered only inside the grace
 * window and only with the same successor, anything older is reuse and ends the family.
 *
 * The decision and every write it implies happen in one step per engine (an SQLite
 * `BEGIN IMMEDIATE` transaction, a Redis Lua script), so concurrent refreshes on any number of
 * instances see one order, and a refresh that fails leaves nothing behind to undo. Every key
 * of one family carries the grant id as a Redis Cluster hash tag (`{sid}`), so the script's
 * keys share one slot.
 *
 *   refresh_family:{sid}          {current, previous?, issued_at, rotated_at?}   TTL refresh lifetime
 *   refresh_rotated:{sid}:{hash}  {at}: a token of this family that was rotated   TTL refresh lifetime
 *   refresh_next:{sid}            {for, sealed?}: the successor of `previous`      TTL grace window
 *
 * The grace window runs from the moment the rotating caller has the store's answer. A rotation
 * whose answer was lost on its way back (Redis stopped right after running it) keeps its sealed
 * successor until the successor is used, so the client's retry after the outage, with the only
 * token it has, gets it (redis-rotation.ts); an SQLite transaction's outcome is never in doubt.
 *
 * Hashes are SHA-256 of the token (base64url). `sealed` is the successor token under
 * AES-256-GCM, so the grace window can hand it out again; the store never sees it in clear.
 */

import type { Json } from "./store.js";

export const FAMILY_NS = "refresh_family";
export const ROTATED_NS = "refresh_rotated";
export const NEXT_NS = "refresh_next";

/** Grant ids become part of keys: no hash-tag braces, no separators, bounded length. */
const SID = /^[A-Za-z0-9_-]{1,64}$/;

export function isValidSid(sid: string): boolean {
  return SID.test(sid);
}

function tag(sid: string): string {
  if (!isValidSid(sid)) throw new RangeError("invalid grant id for a refresh family");
  return `{${sid}}`;
}

export const familyKey = (sid: string) => tag(sid);
export const nextKey = (sid: string) => tag(sid);
export const rotatedKey = (sid: string, hash: string) => `${tag(sid)}:${hash}`;

/** The chain state of one grant. Only scalars: the Redis script re-encodes it with cjson. */
export interface RefreshFamily {
  /** Hash of the one live refresh token. */
  current: string;
  /** Hash of its immediate predecessor, until the current one is used. */
  previous?: string;
  /** When the current token was issued, seconds since the epoch. */
  issued_at: number;
  /** When `previous` was rotated, epoch milliseconds. */
  rotated_at?: number;
}

/** What the grace window can hand out again: the successor of `for` (a hash). */
export interface SealedSuccessor {
  for: string;
  /** Absent without a sealing secret: inside the window a repeat is refused, not served. */
  sealed?: string;
}

export interface RefreshRotation {
  sid: string;
  /** Hash of the token presented. */
  presented: string;
  /** Hash of the successor to install if `presented` is the current token. */
  successor: string;
  /** The successor, sealed, to keep for the grace window; undefined = nothing to hand out again. */
  sealedSuccessor?: string;
  /** The successor's issue time, seconds since the epoch. */
  issuedAt: number;
  /** Lifetime of the family and of the rotated mark. */
  ttlSeconds: number;
  /** How long a repeat of the predecessor is answered with the same successor, from the answer; 0 = never. */
  graceSeconds: number;
  /**
   * An entry written in the same atomic step whenever the rotation hands out a token (rotated
   * or replayed), and never otherwise: the grant, renewed with its family (sliding lifetime),
   * so a refresh is one store write, not two.
   */
  alongside?: AlongsideEntry;
}

export interface AlongsideEntry {
  ns: string;
  key: string;
  value: Json;
  ttlSeconds: number;
}

export type RotationOutcome =
  /** `presented` was current; `successor` now is. */
  | { outcome: "rotated" }
  /** `presented` is the predecessor, inside the grace window: its successor, sealed. */
  | { outcome: "replayed"; sealed: string }
  /** The predecessor inside the grace window, but no sealed successor to hand out. Nothing changed. */
  | { outcome: "superseded" }
  /** A token of this family that was already rotated (predecessor after the window, or older): the family is gone. */
  | { outcome: "reused" }
  /** No such family, or a token it never issued. Nothing changed. */
  | { outcome: "unknown" };

/**
 * A whole refresh in one atomic step, where an engine can do it in one command (Redis but
 * Cluster, where the grant sits in another slot than its family): the reads a refresh decides
 * on (the family, the grant, the grant's revocation mark), the checks a plain refresh passes,
 * and the rotation, renewing the grant's lifetime. Anything but the plain case (the
 * predecessor, a rotated token, a grant gone, revoked or of another client, a liveness
 * re-check or index renewal due, a scope or audience wider than the grant) is declined with
 * nothing changed and the reads handed back, so the caller decides it as before (its own
 * checks, then {@link RefreshRotationStore.rotateRefresh}). `ttlSeconds` is the grant's
 * lifetime too.
 */
export interface RefreshStep extends Omit<RefreshRotation, "alongside"> {
  /** Where the grant and its revocation mark are (the grant's JSON is read, never rewritten). */
  grant: { ns: string; key: string };
  revocation: { ns: string; key: string };
  /** The client that presented the token: the grant must be its own. */
  clientId: string;
  /** The grant's `checked_at` (or `auth_time`), epoch s, must be at least this: no re-check due. */
  checkedSince: number;
  /** The grant's `indexed_until`, epoch s, must be at least this: its index entries outlive it. */
  indexedUntil: number;
  /** The scope asked for, each of which the grant must hold; undefined = the grant's own. */
  scope?: string[];
  /** The audiences asked for, each of which the grant must hold. */
  resources: string[];
  /**
   * Abuse-brake counters to increment first (Store.incrMany's semantics: the TTL set when a
   * counter has none); past any one's max the step declines as "braked", nothing else done.
   */
  brakes?: { ns: string; counters: Array<{ key: string; ttlSeconds: number; max: number }> };
}

export type RefreshStepOutcome =
  /** Rotated, and the grant renewed; `grant` is its JSON as read. */
  | { outcome: "rotated"; grant: Json }
  /** Not a plain refresh: nothing changed; what was read, for the caller to decide on. */
  | {
      outcome: "declined";
      standing: "current" | "previous" | "rotated";
      /** When the family's current token was issued, epoch s. */
      currentIssuedAt: number;
      grant?: Json;
      revoked: boolean;
    }
  /** A brake counter went past its max: only the counters changed; their counts, in order. */
  | { outcome: "braked"; counts: number[] }
  /** No such family, or a token it never issued. Nothing changed. */
  | { outcome: "unknown" };

/** The atomic operation both engines implement; see {@link RefreshRotation}. */
export interface RefreshRotationStore {
  rotateRefresh(rotation: RefreshRotation): Promise<RotationOutcome>;
  /** Where the engine can: {@link RefreshStep}. */
  readonly refreshInOneStep?: (step: RefreshStep) => Promise<RefreshStepOutcome>;
}
