/**
 * The revocation list that access-token checks consult. JWT access tokens are checked without
 * a store round trip except for this list, and its answers (verdicts) are cached per token for
 * `cacheSeconds` (the config's `tokens.revocation_cache`): the longest a revocation can take to
 * bite anywhere, whatever else fails.
 *
 * Entries (namespace "revoked", each expiring when nothing it could match is still valid):
 *   jti:{jti}        one access token
 *   sid:{grant id}   every token of one grant (a login, its refresh family)
 *   client:{id}      every token issued to a client before `at`
 *   user:{sub}       every token issued to a user before `at`
 *
 * Each mark is also published on the store's change feed (topic "revoked", the body is the
 * entry's key), and every instance that follows it (follow()) drops the cached verdicts that
 * mark names, and only those: a token's verdict by its jti, a grant's, client's or user's
 * through an index of cached verdicts by owner. So a revocation bites everywhere within the
 * feed's delay (well under a second) and a stream of revocations leaves other tokens' verdicts
 * cached. When the feed may have missed marks (a lost subscription that is back), every
 * verdict is dropped.
 */
import { type CacheRegistry, TtlCache } from "../cache/ttl-cache.js";
import type { Store } from "../store/store.js";

const NS = "revoked";
/** The change feed topic revocation marks are published on. */
export const REVOKED_TOPIC = "revoked";
/** Upper bound on cached verdicts, so a flood of distinct tokens cannot grow memory without limit. */
const MAX_CACHED = 50_000;

export interface RevocableToken {
  jti: string;
  sid: string;
  client_id: string;
  sub: string;
  /** Seconds since the epoch. */
  iat: number;
}

type Mark = {
  at: number;
};

interface Verdict {
  revoked: boolean;
  /** The marks that could end this token besides its own jti: `sid:…`, `client:…`, `user:…`. */
  owners: readonly string[];
}

export interface RevocationsOptions {
  /** Where /metrics finds the verdict cache. */
  caches?: CacheRegistry;
}

export class Revocations {
  private readonly verdicts: TtlCache<Verdict>;
  /** Owner mark key -> jtis of the cached verdicts it would end. */
  private readonly byOwner = new Map<string, Set<string>>();
  /**
   * Bumped by every invalidation: a verdict read from the store while one happened may predate
   * the mark that caused it, so it is answered but not cached.
   */
  private generation = 0;

  constructor(
    private readonly store: Store,
    private readonly cacheSeconds: number,
    /** The longest any token can live (refresh lifetime): how long client/user marks are kept. */
    private readonly maxTokenLifetimeSeconds: number,
    options: RevocationsOptions = {},
  ) {
    this.verdicts = new TtlCache<Verdict>("revocation", MAX_CACHED, {
      registry: options.caches,
      onRemove: (jti, verdict) => this.unindex(jti, verdict),
    });
  }

  /**
   * Applies marks published by other instances (and the admin CLI) to this one's verdicts until
   * the returned function is called.
   */
  follow(): Promise<() => void> {
    return this.store.changes.subscribe(REVOKED_TOPIC, {
      change: (key) => this.forget(key),
      resync: () => {
        this.generation++;
        this.verdicts.clear();
      },
    });
  }

  async revokeAccessToken(jti: string, expiresAtSeconds: number): Promise<void> {
    const ttl = Math.max(1, expiresAtSeconds - Math.floor(Date.now() / 1000) + 60);
    await this.mark(`jti:${jti}`, ttl);
  }

  async revokeGrant(sid: string): Promise<void> {
    await this.mark(`sid:${sid}`, this.maxTokenLifetimeSeconds);
  }

  async revokeClient(clientId: string): Promise<void> {
    await this.mark(`client:${clientId}`, this.maxTokenLifetimeSeconds);
  }

  async revokeUser(sub: string): Promise<void> {
    await this.mark(`user:${sub}`, this.maxTokenLifetimeSeconds);
  }

  async isGrantRevoked(sid: string): Promise<boolean> {
    const { ns, key } = this.grantMark(sid);
    return (await this.store.get<Mark>(ns, key)) !== undefined;
  }

  /** Where the mark that revokes grant `sid` is stored, for a store step that checks it itself. */
  grantMark(sid: string): { ns: string; key: string } {
    return { ns: NS, key: `sid:${sid}` };
  }

  /**
   * The cached verdict for a token while it is fresh, without touching the store; else
   * undefined. The /verify hot path: allocates nothing.
   */
  cachedVerdict(jti: string, now: number = Date.now()): boolean | undefined {
    return this.verdicts.get(jti, now)?.revoked;
  }

  /**
   * Whether a token is revoked; cached per token for `cacheSeconds` unless `fresh` (the
   * authorization server's own answers, such as introspection, are never stale).
   */
  async isRevoked(token: RevocableToken, options: { fresh?: boolean } = {}): Promise<boolean> {
    if (!options.fresh) {
      const cached = this.verdicts.get(token.jti);
      if (cached) return cached.revoked;
    }
    const generation = this.generation;
    const owners = [`sid:${token.sid}`, `client:${token.client_id}`, `user:${token.sub}`];
    const [jti, sid, client, user] = await this.store.getMany<Mark>(NS, [`jti:${token.jti}`, ...owners]);
    const issuedMs = token.iat * 1000;
    const revoked =
      jti !== undefined ||
      sid !== undefined ||
      (client !== undefined && issuedMs <= client.at) ||
      (user !== undefined && issuedMs <= user.at);
    if (generation === this.generation) this.remember(token.jti, { revoked, owners });
    return revoked;
  }

  /**
   * The mark and its change in one store step (one SQLite transaction). A change that does not
   * reach other instances (a failed Redis PUBLISH) leaves the mark stored: they enforce it when
   * their cached verdict expires.
   */
  private async mark(key: string, ttlSeconds: number): Promise<void> {
    try {
      await this.store.putAndPublish(NS, key, { at: Date.now() }, ttlSeconds, REVOKED_TOPIC);
    } finally {
      // This instance at once (also when the store failed part-way); the others when they hear of it.
      this.forget(key);
    }
  }

  /** Drops the cached verdicts a mark (`jti:…`, `sid:…`, `client:…`, `user:…`) names. */
  private forget(key: string): void {
    this.generation++;
    if (key.startsWith("jti:")) {
      this.verdicts.delete(key.slice(4));
      return;
    }
    const jtis = this.byOwner.get(key);
    if (!jtis) return;
    // Deleting unindexes, which changes the set: copy it first.
    for (const jti of [...jtis]) this.verdicts.delete(jti);
  }

  private remember(jti: string, verdict: Verdict): void {
    const ttlMs = this.cacheSeconds * 1000;
    if (!(ttlMs > 0)) return;
    this.verdicts.set(jti, verdict, ttlMs);
    for (const owner of verdict.owners) {
      let jtis = this.byOwner.get(owner);
      if (!jtis) {
        jtis = new Set();
        this.byOwner.set(owner, jtis);
      }
      jtis.add(jti);
    }
  }

  private unindex(jti: string, verdict: Verdict): void {
    for (const owner of verdict.owners) {
      const jtis = this.byOwner.get(owner);
      if (!jtis) continue;
      jtis.delete(jti);
      if (jtis.size === 0) this.byOwner.delete(owner);
    }
  }
}
