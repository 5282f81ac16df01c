/**
 * Seeding a store with many grants before a gateway starts on it, through the Store API of the
 * compiled gateway (dist/) that the bench runs: each grant is written the way the authorization
 * server writes one (the grant, its refresh family, and whatever the grant store keeps with
 * them), so what a scenario meets is what a long-running deployment has.
 */
import { randomUUID } from "node:crypto";

const dist = (path: string) => new URL(`../../dist/${path}`, import.meta.url).href;
const { validateConfig } = (await import(
  dist("config/load.js")
)) as typeof import("../../src/config/load.js");
const { openStore } = (await import(dist("store/open.js"))) as typeof import("../../src/store/open.js");
const { GrantStore } = (await import(
  dist("oauth/grant-store.js")
)) as typeof import("../../src/oauth/grant-store.js");

export type ConfigTree = Record<string, unknown>;
type Store = import("../../src/store/store.js").Store;

/** Writes in flight at once: Redis pipelines them; SQLite runs them one by one anyway. */
const BATCH = 500;

/** Opens the store a gateway with this config tree would open (same file, same Redis and prefix). */
export async function openSeedStore(tree: ConfigTree): Promise<{ store: Store; close(): Promise<void> }> {
  const config = validateConfig({ log_level: "silent", ...tree });
  const store = await openStore(config);
  return { store, close: () => store.close() };
}

export interface GrantSpread {
  /** Grants to write. */
  count: number;
  /** Spread over this many users (`seed-user-{i}`) and clients (`seed-client-{i}`). */
  users: number;
  clients: number;
}

/** Writes `count` grants with refresh families; returns how long it took, in seconds. */
export async function seedGrants(
  store: Store,
  spread: GrantSpread,
  ttlSeconds = 30 * 86_400,
): Promise<number> {
  const grants = new GrantStore(store, { code: 60, refresh: ttlSeconds });
  const now = Math.floor(Date.now() / 1000);
  const started = performance.now();
  for (let done = 0; done < spread.count; done += BATCH) {
    const batch: Promise<unknown>[] = [];
    for (let i = done; i < Math.min(done + BATCH, spread.count); i++) {
      batch.push(
        seedGrant(grants, {
          sid: randomUUID(),
          clientId: `seed-client-${i % spread.clients}`,
          sub: `seed-user-${i % spread.users}`,
          now,
        }),
      );
    }
    await Promise.all(batch);
  }
  // Written as today's gateway writes them (indexed): what a store started empty has.
  await store.put("migrations", "owner_index_v1", { at: Date.now() });
  return (performance.now() - started) / 1000;
}

/** One grant of `sub` in `clientId`, with its refresh family, as the code grant writes it. */
export async function seedGrant(
  grants: InstanceType<typeof GrantStore>,
  g: { sid: string; clientId: string; sub: string; now: number },
): Promise<string> {
  await grants.saveGrant({
    sid: g.sid,
    client_id: g.clientId,
    user: { sub: g.sub, login: g.sub, provider: "local" },
    scope: [],
    resources: [],
    created_at: g.now,
    auth_time: g.now,
  });
  return grants.refresh.start(g.sid);
}

export { GrantStore };
