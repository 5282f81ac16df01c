/**
 * {@link RefreshRotation} on SQLite: the decision and its writes as one synchronous function,
 * which sqlite.ts runs inside a `BEGIN IMMEDIATE` transaction. IMMEDIATE takes the file's write
 * lock before the first read, so processes sharing the file decide one after another (each
 * waiting up to the busy timeout) and never on a snapshot another process is about to change.
 * The Redis script in redis-rotation.ts makes the same decision; the store contract suite holds
 * both to it.
 */
import {
  FAMILY_NS,
  familyKey,
  NEXT_NS,
  nextKey,
  type RefreshFamily,
  type RefreshRotation,
  ROTATED_NS,
  type RotationOutcome,
  rotatedKey,
  type SealedSuccessor,
} from "./refresh-rotation.js";

/** The synchronous row operations the decision needs (live rows only; TTL in seconds, 0 = none). */
export interface SyncRows {
  get<T>(ns: string, key: string): T | undefined;
  put(ns: string, key: string, value: unknown, ttlSeconds: number): void;
  delete(ns: string, key: string): void;
}

function writeAlongside(rows: SyncRows, r: RefreshRotation): void {
  if (r.alongside) rows.put(r.alongside.ns, r.alongside.key, r.alongside.value, r.alongside.ttlSeconds);
}

export function rotateRefreshRows(rows: SyncRows, r: RefreshRotation, now: number): RotationOutcome {
  const fkey = familyKey(r.sid);
  const nkey = nextKey(r.sid);
  const family = rows.get<RefreshFamily>(FAMILY_NS, fkey);
  if (!family) return { outcome: "unknown" };
  if (family.current === r.presented) {
    const next: RefreshFamily = {
      current: r.successor,
      previous: r.presented,
      issued_at: r.issuedAt,
      rotated_at: now,
    };
    rows.put(FAMILY_NS, fkey, next, r.ttlSeconds);
    rows.put(ROTATED_NS, rotatedKey(r.sid, r.presented), { at: now }, r.ttlSeconds);
    if (r.graceSeconds > 0) {
      const successor: SealedSuccessor = { for: r.presented };
      if (r.sealedSuccessor !== undefined) successor.sealed = r.sealedSuccessor;
      rows.put(NEXT_NS, nkey, successor, r.graceSeconds);
    } else {
      rows.delete(NEXT_NS, nkey);
    }
    writeAlongside(rows, r);
    return { outcome: "rotated" };
  }
  if (family.previous === r.presented) {
    const successor = rows.get<SealedSuccessor>(NEXT_NS, nkey);
    if (successor?.for === r.presented) {
      if (successor.sealed === undefined) return { outcome: "superseded" };
      writeAlongside(rows, r);
      return { outcome: "replayed", sealed: successor.sealed };
    }
  }
  if (family.previous === r.presented || rows.get(ROTATED_NS, rotatedKey(r.sid, r.presented)) !== undefined) {
    rows.delete(FAMILY_NS, fkey);
    rows.delete(NEXT_NS, nkey);
    return { outcome: "reused" };
  }
  return { outcome: "unknown" };
}
