/**
 * Which instance holds each bridged session: one store entry per session (namespace
 * `cluster_sessions`, key `{service}:{session id}`, value the owner's `advertise_url`), written
 * before the session id reaches the client, renewed while the session lives, deleted when it
 * ends. An instance killed outright leaves its entries behind until their TTL runs out, or until
 * another instance finds the owner unreachable and deletes them (STORAGE.md).
 */
import type { Store } from "../store/store.js";

const NAMESPACE = "cluster_sessions";

interface OwnerRecord {
  owner: string;
  [key: string]: string;
}

export interface OwnersLogger {
  warn(obj: object, msg?: string): void;
}

export class SessionOwners {
  /** The last write or delete of each session's entry, so a delete never overtakes its put. */
  private readonly pending = new Map<string, Promise<void>>();

  /**
   * @param self this instance's `advertise_url`
   * @param ttlSeconds how long an entry lives without renewal
   */
  constructor(
    private readonly store: Store,
    readonly self: string,
    readonly ttlSeconds: number,
    private readonly log?: OwnersLogger,
  ) {}

  /** Record this instance as the session's owner; rejects when the store cannot take it. */
  claim(service: string, sessionId: string): Promise<void> {
    const key = `${service}:${sessionId}`;
    return this.after(key, () => this.store.put(NAMESPACE, key, { owner: this.self }, this.ttlSeconds));
  }

  /** The session ended here: its entry goes (in the background; a failure leaves it to its TTL). */
  release(service: string, sessionId: string): void {
    const key = `${service}:${sessionId}`;
    void this.after(key, async () => {
      await this.store.delete(NAMESPACE, key);
    }).catch((err: Error) => this.log?.warn({ err: err.message, key }, "session owner entry not deleted"));
  }

  /** The instance holding the session, if any entry names one. */
  async ownerOf(service: string, sessionId: string): Promise<string | undefined> {
    const record = await this.store.get<OwnerRecord>(NAMESPACE, `${service}:${sessionId}`);
    return typeof record?.owner === "string" ? record.owner : undefined;
  }

  /**
   * Delete an entry naming `owner` when that owner turned out to be gone. (Session ids are random
   * UUIDs: an entry for this id names no other session.)
   */
  async forget(service: string, sessionId: string, owner: string): Promise<void> {
    const key = `${service}:${sessionId}`;
    if ((await this.ownerOf(service, sessionId)) === owner) await this.store.delete(NAMESPACE, key);
  }

  /** Renew the entries of sessions that still live here. */
  async renew(service: string, sessionIds: string[]): Promise<void> {
    await Promise.all(sessionIds.map((id) => this.claim(service, id)));
  }

  /** Wait for every write and delete started so far (shutdown, before the store closes). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.pending.values()]);
  }

  private after(key: string, op: () => Promise<void>): Promise<void> {
    const previous = this.pending.get(key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(op);
    this.pending.set(key, next);
    const clear = () => {
      if (this.pending.get(key) === next) this.pending.delete(key);
    };
    next.then(clear, clear);
    return next;
  }
}
