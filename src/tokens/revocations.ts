/**
 * The revocation list that access-token checks consult. JWT access tokens are checked without
 * a store round trip except for this list, and its answers are cached for `cacheSeconds` (the
 * config's `tokens.revocation_cache`), which bounds how long a revocation takes to bite.
 *
 * Entries (namespace "revoked", each expiring when nothing it could match is still valid):
 *   jti:{jti}        one access token
 *   sid:{grant id}   every token of one grant (a login, its refresh family)
 *   client:{id}      every token issued to a client before `at`
 *   user:{sub}       every token issued to a user before `at`
 */
import type { Store } from "../store/store.js";

const NS = "revoked";
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

export class Revocations {
  private readonly cache = new Map<string, { revoked: boolean; until: number }>();

  constructor(
    private readonly store: Store,
    private readonly cacheSeconds: number,
    /** The longest any token can live (refresh lifetime): how long client/user marks are kept. */
    private readonly maxTokenLifetimeSeconds: number,
  ) {}

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
    return (await this.store.get<Mark>(NS, `sid:${sid}`)) !== undefined;
  }

  /** The cached verdict for a token while it is fresh, without touching the store; else undefined. */
  cachedVerdict(jti: string): boolean | undefined {
    const cached = this.cache.get(jti);
    return cached && cached.until > Date.now() ? cached.revoked : undefined;
  }

  /**
   * Whether a token is revoked; cached per token for `cacheSeconds` unless `fresh` (the
   * authorization server's own answers, such as introspection, are never stale).
   */
  async isRevoked(token: RevocableToken, options: { fresh?: boolean } = {}): Promise<boolean> {
    const now = Date.now();
    const cached = options.fresh ? undefined : this.cache.get(token.jti);
    if (cached && cached.until > now) return cached.revoked;
    const [jti, sid, client, user] = await this.store.getMany<Mark>(NS, [
      `jti:${token.jti}`,
      `sid:${token.sid}`,
      `client:${token.client_id}`,
      `user:${token.sub}`,
    ]);
    const issuedMs = token.iat * 1000;
    const revoked =
      jti !== undefined ||
      sid !== undefined ||
      (client !== undefined && issuedMs <= client.at) ||
      (user !== undefined && issuedMs <= user.at);
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(token.jti, { revoked, until: now + this.cacheSeconds * 1000 });
    return revoked;
  }

  private async mark(key: string, ttlSeconds: number): Promise<void> {
    await this.store.put(NS, key, { at: Date.now() }, ttlSeconds);
    // Revocations made by this instance bite here at once; other instances within cacheSeconds.
    this.cache.clear();
  }
}
