/**
 * Refresh tokens: one family per grant, rotated on every use, with one live token at a time
 * (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2). The rules and the stored layout are in
 * store/refresh-rotation.ts; this module mints the tokens, hashes and seals them, and reads
 * what a presented token is.
 *
 * A token is `{sid}.{secret}`: the grant id names the family (so a refresh finds it in one
 * lookup, and on Redis Cluster every key of the rotation sits in the grant's slot), the 256-bit
 * secret is what makes it a credential. Only its SHA-256 hash is stored; the successor is kept
 * sealed for the grace window, and not at all without a sealing secret.
 */

import { hashesEqual, hashSecret, newSecret } from "../crypto/secrets.js";
import type { AlongsideEntry, RefreshRotation, RefreshStep } from "../store/refresh-rotation.js";
import {
  FAMILY_NS,
  familyKey,
  isValidSid,
  NEXT_NS,
  nextKey,
  type RefreshFamily,
  ROTATED_NS,
  rotatedKey,
} from "../store/refresh-rotation.js";
import type { Json, Store } from "../store/store.js";
import { SuccessorSealer } from "./successor-sealing.js";

export interface RefreshTokenOptions {
  /** Lifetime of a family without use (`tokens.refresh_ttl`), renewed at every rotation. */
  ttlSeconds: number;
  /** `tokens.refresh_reuse_grace`: how long a repeat of the predecessor gets the same successor. */
  graceSeconds: number;
  /**
   * The sealing secret. The gateway always has one; the admin CLI, which never rotates, has
   * none (without it a repeat inside the grace window is refused, the grant kept).
   */
  sealingSecret?: string;
}

/** Where a presented token stands in its family. */
export type Standing = "current" | "previous" | "rotated";

export interface PresentedRefreshToken {
  sid: string;
  hash: string;
  standing: Standing;
  /** When the family's current token was issued, seconds since the epoch. */
  currentIssuedAt: number;
}

export type RotationResult =
  /** The refresh token to answer with: a new successor, or the one handed out before (replayed). */
  | { outcome: "rotated" | "replayed"; token: string }
  /** superseded: a repeat in the window with nothing to hand out; reused: the family has ended. */
  | { outcome: "superseded" | "reused" | "unknown" };

/** What the store is asked to check in a one-step refresh, besides the token itself. */
export type RefreshChecks = Omit<RefreshStep, keyof RefreshRotation>;

export type StepResult =
  /** Rotated, the grant renewed: the successor to answer with, and the grant as read. */
  | { outcome: "rotated"; token: string; grant: Json }
  /** Not a plain refresh; nothing changed: the token's standing, its grant and revocation mark. */
  | { outcome: "declined"; presented: PresentedRefreshToken; grant?: Json; revoked: boolean }
  /** A brake went past its max (RefreshStep.brakes): nothing but the counts changed. */
  | { outcome: "braked"; counts: number[] }
  | { outcome: "unknown" };

/** Whether `token` has the shape `{sid}.{secret}` (which says nothing of whether it was issued). */
function wellFormed(token: string): boolean {
  const dot = token.indexOf(".");
  return dot > 0 && token.length - dot >= 32 && isValidSid(token.slice(0, dot));
}

/** `{sid}.{secret}` -> its parts; undefined for anything else. */
function parse(token: string): { sid: string; hash: string } | undefined {
  if (!wellFormed(token)) return undefined;
  return { sid: token.slice(0, token.indexOf(".")), hash: hashSecret(token) };
}

/** Associated data of a sealed successor: valid only as the successor of that token of that grant. */
const sealContext = (sid: string, predecessor: string) => `${sid}:${predecessor}`;

export class RefreshTokens {
  private readonly sealer?: SuccessorSealer;

  constructor(
    private readonly store: Store,
    private readonly options: RefreshTokenOptions,
  ) {
    if (options.sealingSecret) this.sealer = new SuccessorSealer(options.sealingSecret);
  }

  /** Starts the family of a new grant; returns its first token. */
  async start(sid: string): Promise<string> {
    const token = `${sid}.${newSecret()}`;
    const family: RefreshFamily = { current: hashSecret(token), issued_at: Math.floor(Date.now() / 1000) };
    await this.store.put(FAMILY_NS, familyKey(sid), family as never, this.options.ttlSeconds);
    return token;
  }

  /** Whether `token` has a refresh token's shape: what a store step is sent for. */
  wellFormed(token: string): boolean {
    return wellFormed(token);
  }

  /**
   * The grant id a token names, read from the token alone (nothing is looked up, so it is not
   * yet known to be a token of that grant); undefined for anything not shaped like one.
   */
  grantOf(token: string): string | undefined {
    const dot = token.indexOf(".");
    return dot > 0 && isValidSid(token.slice(0, dot)) ? token.slice(0, dot) : undefined;
  }

  /** What a presented token is, without changing anything; undefined = not a token of a live family. */
  async inspect(token: string): Promise<PresentedRefreshToken | undefined> {
    const parsed = parse(token);
    if (!parsed) return undefined;
    const { sid, hash } = parsed;
    const family = (await this.store.get(FAMILY_NS, familyKey(sid))) as RefreshFamily | undefined;
    if (!family) return undefined;
    const found = (standing: Standing) => ({ sid, hash, standing, currentIssuedAt: family.issued_at });
    if (hashesEqual(family.current, hash)) return found("current");
    if (hashesEqual(family.previous, hash)) return found("previous");
    return (await this.store.get(ROTATED_NS, rotatedKey(sid, hash))) !== undefined
      ? found("rotated")
      : undefined;
  }

  /** Whether the store does a whole plain refresh in one step ({@link refreshInOneStep}). */
  get inOneStep(): boolean {
    return this.store.refreshInOneStep !== undefined;
  }

  /**
   * A whole plain refresh in one atomic store step, where the store can (RefreshStep): the
   * reads, `checks`, and the rotation. Declined, nothing changed, the caller decides on what
   * was read as with {@link inspect}, and rotates with {@link rotate}.
   */
  async refreshInOneStep(token: string, checks: RefreshChecks): Promise<StepResult> {
    const step = this.store.refreshInOneStep;
    const parsed = parse(token);
    if (!step) throw new Error("this store does not refresh in one step");
    if (!parsed) return { outcome: "unknown" };
    const { sid, hash } = parsed;
    const { successor, hashed, sealed } = await this.successorFor(sid, hash);
    const result = await step({
      sid,
      presented: hash,
      successor: hashed,
      ...(sealed ? { sealedSuccessor: sealed } : {}),
      issuedAt: Math.floor(Date.now() / 1000),
      ttlSeconds: this.options.ttlSeconds,
      graceSeconds: this.options.graceSeconds,
      ...checks,
    });
    switch (result.outcome) {
      case "rotated":
        return { outcome: "rotated", token: successor, grant: result.grant };
      case "declined": {
        const presented = { sid, hash, standing: result.standing, currentIssuedAt: result.currentIssuedAt };
        return {
          outcome: "declined",
          presented,
          revoked: result.revoked,
          ...(result.grant ? { grant: result.grant } : {}),
        };
      }
      default:
        return result;
    }
  }

  /** A new successor for `{sid, hash}`: the token, its hash, and sealed for the grace window (if any). */
  private async successorFor(sid: string, hash: string) {
    const successor = `${sid}.${newSecret()}`;
    const sealed =
      this.sealer && this.options.graceSeconds > 0
        ? await this.sealer.seal(successor, sealContext(sid, hash))
        : undefined;
    return { successor, hashed: hashSecret(successor), sealed };
  }

  /**
   * Rotates in one atomic store step: the current token gets a successor; the predecessor
   * inside the grace window gets the same successor again; anything older ends the family.
   * `alongside` is written in the same step whenever a token is handed out (the grant).
   */
  async rotate(
    { sid, hash }: { sid: string; hash: string },
    alongside?: AlongsideEntry,
  ): Promise<RotationResult> {
    const { successor, hashed, sealed } = await this.successorFor(sid, hash);
    const result = await this.store.rotateRefresh({
      sid,
      presented: hash,
      successor: hashed,
      sealedSuccessor: sealed,
      issuedAt: Math.floor(Date.now() / 1000),
      ttlSeconds: this.options.ttlSeconds,
      graceSeconds: this.options.graceSeconds,
      ...(alongside ? { alongside } : {}),
    });
    switch (result.outcome) {
      case "rotated":
        return { outcome: "rotated", token: successor };
      case "replayed": {
        // Sealed by an instance with another secret: as if there were nothing to hand out.
        const token = await this.sealer?.unseal(result.sealed, sealContext(sid, hash));
        return token ? { outcome: "replayed", token } : { outcome: "superseded" };
      }
      default:
        return { outcome: result.outcome };
    }
  }

  /** Ends a family: none of its tokens refreshes again (rotated marks expire on their own). */
  async end(sid: string): Promise<void> {
    if (!isValidSid(sid)) return;
    await this.store.delete(FAMILY_NS, familyKey(sid));
    await this.store.delete(NEXT_NS, nextKey(sid));
  }

  /** Ends many families at once: two multi-key deletions, whatever their number (revoker.ts). */
  async endMany(sids: string[]): Promise<void> {
    const valid = sids.filter(isValidSid);
    await Promise.all([
      this.store.deleteMany(FAMILY_NS, valid.map(familyKey)),
      this.store.deleteMany(NEXT_NS, valid.map(nextKey)),
    ]);
  }
}
