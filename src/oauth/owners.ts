/**
 * Owner-keyed storage (STORAGE.md, "Owner indexes"): every grant, remembered consent, browser
 * session and upstream credential is listed in its user's index, and grants and consents also in
 * their client's, so ending a user's or a client's access reads that owner's index, never a
 * whole namespace. Members are `{ns}:{key}` of the entry they stand for.
 *
 * An entry is added to its indexes before it is written, so no live entry is ever missing from
 * one; a member whose entry is gone (expired, deleted) is skipped and dropped when its owner's
 * index is listed to end access.
 */
import type { Store } from "../store/store.js";

export const userIndex = (sub: string) => `user:${sub}`;
export const clientIndex = (clientId: string) => `client:${clientId}`;

/** The index member naming entry `key` of namespace `ns`. */
export const memberOf = (ns: string, key: string) => `${ns}:${key}`;

/** The entry a member names; undefined for a malformed one. */
export function entryOf(member: string): { ns: string; key: string } | undefined {
  const colon = member.indexOf(":");
  if (colon <= 0 || colon === member.length - 1) return undefined;
  return { ns: member.slice(0, colon), key: member.slice(colon + 1) };
}

/** Lists entry (ns, key) in each owner's index for `ttlSeconds`: before the entry is written. */
export async function indexEntry(
  store: Store,
  owners: string[],
  ns: string,
  key: string,
  ttlSeconds: number | undefined,
): Promise<void> {
  const member = memberOf(ns, key);
  await Promise.all(owners.map((owner) => store.indexAdd(owner, member, ttlSeconds)));
}

/** An owner's index read as entries, grouped by namespace (members that do not parse are dropped). */
export async function ownedEntries(
  store: Store,
  owner: string,
): Promise<{ members: string[]; byNamespace: Map<string, string[]> }> {
  const members = await store.indexMembers(owner);
  const byNamespace = new Map<string, string[]>();
  for (const member of members) {
    const entry = entryOf(member);
    if (!entry) continue;
    const keys = byNamespace.get(entry.ns) ?? [];
    keys.push(entry.key);
    byNamespace.set(entry.ns, keys);
  }
  return { members, byNamespace };
}

const MIGRATIONS = "migrations";
const INDEXED = "owner_index_v1";

/**
 * Once per store: lists what was written before owner indexes existed. Grants and sessions name
 * their owners; a consent from then does not (its key `{sub}:{client}` cannot be split when
 * either contains ":"), so it is deleted: the user is asked to consent once more. Safe to run on
 * several instances at once (every step can be repeated).
 */
export async function indexExisting(store: Store, ttl: { grant: number; session: number }): Promise<void> {
  if (await store.get(MIGRATIONS, INDEXED)) return;
  for (const { key, value } of await store.list<{ user?: { sub?: string }; client_id?: string }>("grants")) {
    const sub = value.user?.sub;
    if (!sub || !value.client_id) continue;
    await indexEntry(store, [userIndex(sub), clientIndex(value.client_id)], "grants", key, ttl.grant);
  }
  for (const { key, value } of await store.list<{ user?: { sub?: string } }>("sessions")) {
    if (value.user?.sub) await indexEntry(store, [userIndex(value.user.sub)], "sessions", key, ttl.session);
  }
  for (const { key, value } of await store.list<{ sub?: string; client_id?: string }>("consents")) {
    if (value.sub && value.client_id) {
      await indexEntry(
        store,
        [userIndex(value.sub), clientIndex(value.client_id)],
        "consents",
        key,
        ttl.grant,
      );
    } else {
      await store.delete("consents", key);
    }
  }
  await store.put(MIGRATIONS, INDEXED, { at: Date.now() });
}
