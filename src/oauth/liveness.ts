/**
 * The liveness re-check: where access is extended (a refresh, a reused browser session), the
 * identity provider is asked again whether the person may still sign in, at most every
 * `idp.recheck`. Someone the provider no longer vouches for (left the team or group, account
 * deleted or disabled, authorization revoked) loses everything at once (Revoker.revokeUser).
 *
 * Outage bound (`idp.recheck_grace`): when the provider cannot be asked, the last verdict
 * stands until `recheck + recheck_grace` after the last good check, so a short outage locks no
 * one out; past that the answer is "unavailable" (503 at /token, a page at /authorize) and
 * nothing is revoked, so access resumes when the provider answers. A person removed upstream
 * during an outage thus keeps access at most `recheck + recheck_grace` after their last check.
 *
 * Namespace (STORAGE.md):
 *   upstream:{sub}   the last verdict (identity, when) and the newest login's provider
 *                    credential, sealed                                 TTL refresh lifetime
 * listed in the user's index, so ending the user's access forgets it. A grant also carries its
 * own `checked_at`, so a refresh inside the interval reads nothing more.
 */
import type { IdentityProvider, UpstreamCredential, UpstreamLogin, UserIdentity } from "../idp/idp.js";
import type { Audit } from "../ops/audit.js";
import type { Store } from "../store/store.js";
import { indexEntry, userIndex } from "./owners.js";
import type { Revoker } from "./revoker.js";
import { SuccessorSealer } from "./successor-sealing.js";

const NS = "upstream";
const PURPOSE = "mcp-gateway upstream credential v1";

/** What is stored: the last verdict, and the credential sealed with the user id as context. */
interface StoredVerdict {
  user: UserIdentity;
  checked_at: number;
  sealed?: string;
}

interface Verdict {
  user: UserIdentity;
  checkedAt: number;
  sealed?: string;
  credential?: UpstreamCredential;
}

export interface LivenessOptions {
  intervalSeconds: number;
  graceSeconds: number;
  /** How long a stored credential is kept (the refresh lifetime: no grant outlives it). */
  credentialTtlSeconds: number;
}

/** Where the re-check ran, for the audit event. */
export type RecheckPlace = "refresh" | "session";

export type Confirmation =
  /** Still allowed: the identity as the provider gave it now, and when that was checked. */
  | { outcome: "current"; user: UserIdentity; checkedAt: number }
  /** Not any more: the user's access has been ended. */
  | { outcome: "ended"; reason: string }
  /** Could not be asked, past the outage bound: refuse for now, change nothing. */
  | { outcome: "unavailable"; reason: string; retryAfterSeconds: number };

const nowSeconds = () => Math.floor(Date.now() / 1000);

export class Liveness {
  private readonly sealer: SuccessorSealer;
  /** Re-checks under way, by user: concurrent refreshes of one person ask the provider once. */
  private readonly inFlight = new Map<string, Promise<Confirmation>>();

  constructor(
    private readonly store: Store,
    private readonly idp: IdentityProvider,
    private readonly revoker: Revoker,
    private readonly audit: Audit,
    encryptionSecret: string,
    private readonly options: LivenessOptions,
  ) {
    this.sealer = new SuccessorSealer(encryptionSecret, PURPOSE);
  }

  /** After a sign-in: the verdict, and what lets the provider be asked again (replacing an older login's). */
  async remember(login: UpstreamLogin): Promise<void> {
    await this.save({ user: login.user, checkedAt: nowSeconds(), credential: login.credential });
  }

  /**
   * Whether `user`, last checked at `checkedAt` (epoch s), may still have access. Asks the
   * provider only when neither this check nor the user's last stored verdict is younger than
   * `idp.recheck`.
   */
  async confirm(user: UserIdentity, checkedAt: number, at: RecheckPlace): Promise<Confirmation> {
    if (this.fresh(checkedAt)) return { outcome: "current", user, checkedAt };
    const running = this.inFlight.get(user.sub);
    if (running) return running;
    const check = this.ask(user, checkedAt, at).finally(() => this.inFlight.delete(user.sub));
    this.inFlight.set(user.sub, check);
    return check;
  }

  private fresh(checkedAt: number): boolean {
    return nowSeconds() - checkedAt < this.options.intervalSeconds;
  }

  /** The earliest whole-second `checkedAt` that needs no re-check now (what `fresh` admits). */
  freshSince(): number {
    return nowSeconds() - this.options.intervalSeconds + 1;
  }

  private async ask(user: UserIdentity, checkedAt: number, at: RecheckPlace): Promise<Confirmation> {
    let stored = await this.load(user.sub);
    // Another grant, session or instance asked recently enough.
    if (stored && this.fresh(stored.checkedAt)) {
      return { outcome: "current", user: stored.user, checkedAt: stored.checkedAt };
    }
    let answer = await this.recheck(user, stored?.credential);
    if (answer.outcome === "gone" && this.idp.kind === "redirect") {
      // Another instance may have used (and the provider rotated) the same credential meanwhile:
      // a refusal of a credential that is no longer the current one says nothing. Ask once more.
      const now = await this.load(user.sub);
      if (now?.sealed && now.sealed !== stored?.sealed) {
        stored = now;
        answer = await this.recheck(user, now.credential);
      }
    }
    switch (answer.outcome) {
      case "current": {
        const access = this.idp.checkAccess(answer.user);
        if (!access.allowed) return this.end(user, access.reason, at);
        const verdict = { user: answer.user, checkedAt: nowSeconds() };
        await this.save({ ...verdict, credential: answer.credential ?? stored?.credential });
        return { outcome: "current", ...verdict };
      }
      case "gone":
        return this.end(user, answer.reason, at);
      case "unavailable": {
        const last = Math.max(checkedAt, stored?.checkedAt ?? 0);
        const within = nowSeconds() < last + this.options.intervalSeconds + this.options.graceSeconds;
        this.audit.emit({
          type: "idp.recheck_unavailable",
          user: user.login,
          reason: answer.reason,
          outcome: within ? "last-verdict" : "refused",
        });
        if (within) return { outcome: "current", user, checkedAt };
        return { outcome: "unavailable", reason: answer.reason, retryAfterSeconds: 30 };
      }
    }
  }

  private recheck(user: UserIdentity, credential: UpstreamCredential | undefined) {
    return this.idp.kind === "redirect" ? this.idp.recheck(user, credential) : this.idp.recheck(user);
  }

  private async end(user: UserIdentity, reason: string, at: RecheckPlace): Promise<Confirmation> {
    await this.revoker.revokeUser(user.sub, { login: user.login, reason: "recheck", at });
    return { outcome: "ended", reason };
  }

  private async save(verdict: Verdict): Promise<void> {
    const { sub } = verdict.user;
    const ttl = this.options.credentialTtlSeconds;
    const value: StoredVerdict = { user: verdict.user, checked_at: verdict.checkedAt };
    if (verdict.credential) value.sealed = await this.sealer.seal(JSON.stringify(verdict.credential), sub);
    await indexEntry(this.store, [userIndex(sub)], NS, sub, ttl);
    await this.store.put(NS, sub, value as never, ttl);
  }

  private async load(sub: string): Promise<Verdict | undefined> {
    const value = (await this.store.get(NS, sub)) as StoredVerdict | undefined;
    if (!value) return undefined;
    const plain = value.sealed ? await this.sealer.unseal(value.sealed, sub) : undefined;
    const verdict: Verdict = { user: value.user, checkedAt: value.checked_at, sealed: value.sealed };
    if (plain) verdict.credential = JSON.parse(plain) as UpstreamCredential;
    return verdict;
  }
}
