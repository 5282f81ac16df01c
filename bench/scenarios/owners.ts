/**
 * Ending an owner's access among many grants: with 1,000 and with 100,000 grants of other users
 * and clients in the store, how long `DELETE /register/{id}` (RFC 7592, any self-registered client may send it)
 * takes for a client with 100 grants and 100 consents, and how long `mcp-gateway admin users
 * remove` takes for a user with 10 grants, 10 consents and 3 browser sessions. Both are listings
 * of the owner's index (STORAGE.md), so neither should depend on what else is stored: the two
 * table sizes side by side show it.
 *
 * The HTTP figure is the DELETE's own round trip on the running gateway. The CLI figure is what
 * the operator waits for: the whole process, from spawn to exit. Next to it, `node -e 0` timed
 * the same way (alternating with it) is the floor no Node command goes under on this machine,
 * and their difference (per alternating pair, then the median) is what the command itself adds.
 * The removal is also timed on its own: the Revoker call the command makes, on the same store.
 */
import { spawnSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startRedis, type TestRedis } from "../../test/support/redis.js";
import { startServer } from "../lib.js";
import { type ConfigTree, GrantStore, openSeedStore, seedGrant, seedGrants } from "./seed.js";

const dist = (path: string) => new URL(`../../dist/${path}`, import.meta.url).href;
const { LocalUsers } = (await import(dist("idp/local.js"))) as typeof import("../../src/idp/local.js");
const { Interactions } = (await import(
  dist("oauth/interaction.js")
)) as typeof import("../../src/oauth/interaction.js");
const { Revoker } = (await import(dist("oauth/revoker.js"))) as typeof import("../../src/oauth/revoker.js");
const { Revocations } = (await import(
  dist("tokens/revocations.js")
)) as typeof import("../../src/tokens/revocations.js");

/** Table sizes, comma-separated (BENCH_OWNER_GRANTS=1000,100000 by default). */
const SIZES = (process.env.BENCH_OWNER_GRANTS ?? "1000,100000").split(",").map(Number);
/** Targets per measurement; the figure is their median (and the worst one). */
const TARGETS = 7;
const CLIENT_GRANTS = 100;
const USER_GRANTS = 10;
const USER_SESSIONS = 3;
const TARGET_MS = 100;
const BIN = resolve("bin/mcp-gateway.js");

export interface OwnerRow {
  scenario: string;
  store: string;
  stored: number;
  median: number;
  max: number;
  /** How the figure is measured. */
  note?: string;
  /** A reference figure (Node's start-up, or a process that includes it), not held to the target. */
  floor?: boolean;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function registerClient(url: string): Promise<{ id: string; token: string }> {
  const res = await fetch(`${url}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ redirect_uris: ["http://127.0.0.1:9/cb"], token_endpoint_auth_method: "none" }),
  });
  if (res.status !== 201) throw new Error(`register: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { client_id: string; registration_access_token: string };
  return { id: body.client_id, token: body.registration_access_token };
}

function timedNode(args: string[]): { ms: number; status: number | null; stderr: string } {
  const started = performance.now();
  const res = spawnSync(process.execPath, args, {
    encoding: "utf8",
    env: { PATH: process.env.PATH },
  });
  return { ms: performance.now() - started, status: res.status, stderr: res.stderr };
}

async function scenario(
  store: "sqlite" | "redis",
  redis: TestRedis | undefined,
  stored: number,
): Promise<OwnerRow[]> {
  const dataDir = mkdtempSync(join(tmpdir(), `mcpgw-bench-owners-${store}-`));
  const tree: ConfigTree = {
    data_dir: dataDir,
    store:
      store === "redis"
        ? { type: "redis", redis: { url: redis?.url, key_prefix: `owners-${stored}:` } }
        : { type: "sqlite" },
    ...(store === "redis" ? { keys: { encryption_secret: "bench secret, not a real one" } } : {}),
    rate_limits: { enabled: false },
  };
  const configFile = join(dataDir, "gateway.yaml");
  writeFileSync(configFile, JSON.stringify(tree));
  const seed = await openSeedStore(tree);
  try {
    const seconds = await seedGrants(seed.store, { count: stored, users: 10_000, clients: 1_000 });
    process.stderr.write(`owners (${store}): seeded ${stored} grants in ${seconds.toFixed(1)} s\n`);
    const gw = await startServer<{ url: string }>("gateway", {
      BENCH_CONFIG: JSON.stringify({ ...tree, port: 0 }),
    });
    try {
      const grants = new GrantStore(seed.store, { code: 60, refresh: 30 * 86_400 });
      const interactions = new Interactions(seed.store, {
        pending: 600,
        session: 8 * 3600,
        consent: 30 * 86_400,
      });
      const now = Math.floor(Date.now() / 1000);

      // Clients: registered over HTTP (so DELETE has a registration token), then given grants and consents.
      const clients = [];
      for (let k = 0; k < TARGETS; k++) {
        const client = await registerClient(gw.info.url);
        for (let i = 0; i < CLIENT_GRANTS; i++) {
          const sub = `seed-user-${(k * CLIENT_GRANTS + i) % 10_000}`;
          await seedGrant(grants, { sid: randomUUID(), clientId: client.id, sub, now });
          await interactions.rememberConsent(sub, client.id, [], []);
        }
        clients.push(client);
      }
      const deletes: number[] = [];
      for (const client of clients) {
        const started = performance.now();
        const res = await fetch(`${gw.info.url}/register/${client.id}`, {
          method: "DELETE",
          headers: { authorization: `Bearer ${client.token}` },
        });
        deletes.push(performance.now() - started);
        if (res.status !== 204) throw new Error(`DELETE /register: ${res.status} ${await res.text()}`);
      }

      // Users: local accounts with grants in several clients, consents and browser sessions.
      const users = new LocalUsers(seed.store);
      const names: string[] = [];
      for (let k = 0; k < TARGETS; k++) {
        const name = `victim-${k}`;
        await users.add(name, randomBytes(12).toString("base64url"));
        const identity = { sub: name, login: name, provider: "local" };
        for (let i = 0; i < USER_GRANTS; i++) {
          const clientId = `seed-client-${(k * USER_GRANTS + i) % 1_000}`;
          await seedGrant(grants, { sid: randomUUID(), clientId, sub: name, now });
          await interactions.rememberConsent(name, clientId, [], []);
        }
        for (let i = 0; i < USER_SESSIONS; i++) await interactions.createSession(identity);
        names.push(name);
      }
      const removes: number[] = [];
      const bare: number[] = [];
      /** Each pair's difference: what the command adds to Node's own start-up at that moment. */
      const above: number[] = [];
      for (const name of names) {
        // Alternating, so the machine's drift falls on both.
        const floor = timedNode(["-e", "0"]);
        const hit = timedNode([BIN, "admin", "users", "remove", name, "--config", configFile]);
        if (hit.status !== 0) throw new Error(`admin users remove ${name}: ${hit.stderr}`);
        if (floor.status !== 0) throw new Error(`node -e 0: ${floor.stderr}`);
        removes.push(hit.ms);
        bare.push(floor.ms);
        above.push(hit.ms - floor.ms);
      }

      // The same removal as the command runs it (Revoker.revokeUser), timed on its own.
      const revoker = new Revoker(
        seed.store,
        new Revocations(seed.store, 0, 30 * 86_400),
        grants,
        {
          emit: () => undefined,
        },
        { refresh: 30 * 86_400, session: 8 * 3600 },
      );
      const direct: number[] = [];
      for (let k = 0; k < TARGETS; k++) {
        const name = `direct-${k}`;
        const identity = { sub: name, login: name, provider: "local" };
        for (let i = 0; i < USER_GRANTS; i++) {
          const clientId = `seed-client-${(k * USER_GRANTS + i) % 1_000}`;
          await seedGrant(grants, { sid: randomUUID(), clientId, sub: name, now });
          await interactions.rememberConsent(name, clientId, [], []);
        }
        for (let i = 0; i < USER_SESSIONS; i++) await interactions.createSession(identity);
        const started = performance.now();
        await revoker.revokeUser(name, { login: name, reason: "removed" });
        direct.push(performance.now() - started);
        if ((await seed.store.indexMembers(`user:${name}`)).length) throw new Error(`${name} not removed`);
      }
      return [
        {
          scenario: `DELETE /register/{id} (${CLIENT_GRANTS} grants, ${CLIENT_GRANTS} consents)`,
          store,
          stored,
          median: median(deletes),
          max: Math.max(...deletes),
        },
        {
          scenario: `admin users remove (${USER_GRANTS} grants, ${USER_GRANTS} consents, ${USER_SESSIONS} sessions)`,
          store,
          stored,
          median: median(removes),
          max: Math.max(...removes),
          note: "the whole process, spawn to exit (Node's start-up included: the row below the next is held to the target)",
          floor: true,
        },
        {
          scenario: "`node -e 0`, Node's own start-up (the floor of any command)",
          store,
          stored,
          median: median(bare),
          max: Math.max(...bare),
          note: "spawned the same way, alternating with the row above",
          floor: true,
        },
        {
          scenario: "admin users remove above `node -e 0` (what the command adds to Node's start)",
          store,
          stored,
          median: median(above),
          max: Math.max(...above),
          note: "process − floor, median of the alternating pairs",
        },
        {
          scenario: `user removal itself, Revoker.revokeUser (${USER_GRANTS} grants, ${USER_GRANTS} consents, ${USER_SESSIONS} sessions)`,
          store,
          stored,
          median: median(direct),
          max: Math.max(...direct),
          note: "in the bench process, on the seeded store",
        },
      ];
    } finally {
      await gw.stop();
    }
  } finally {
    await seed.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Both engines; a markdown table for the notes under the main one. */
export async function ownerScenarios(): Promise<string> {
  const rows: OwnerRow[] = [];
  for (const stored of SIZES) rows.push(...(await scenario("sqlite", undefined, stored)));
  const redis = await startRedis();
  if (redis) {
    try {
      for (const stored of SIZES) rows.push(...(await scenario("redis", redis, stored)));
    } finally {
      await redis.stop();
    }
  }
  const lines = rows.map(
    (r) =>
      `| ${r.scenario} | ${r.store} | ${r.stored.toLocaleString("en")} | ${r.median.toFixed(1)} | ${r.max.toFixed(1)} | ${r.floor ? "-" : `< ${TARGET_MS} ms`} | ${r.floor ? "-" : r.median < TARGET_MS && r.max < TARGET_MS ? "yes" : "**no**"} | ${r.note ?? ""} |`,
  );
  return [
    "| ending an owner's access | store | other grants stored | median ms | worst ms | target | met | measured as |",
    "|---|---|---:|---:|---:|---|---|---|",
    ...lines,
  ].join("\n");
}
