/**
 * Token endpoint throughput: refresh grants per second (rotation, JWT signing, store writes)
 * on SQLite and on Redis, against a bare node:http server started in the same run, and the
 * same refresh load on a store that already holds 200,000 grants (issue 9: a big store must not
 * slow a refresh, ≥ 0.9× the empty store's figure).
 *
 * Per engine two gateways run side by side, one on an empty store and one on a store seeded
 * (seed.ts) with BENCH_REFRESH_STORED grants as the gateway writes them (grant, refresh family,
 * owner index entries). Each spends its pre-seeded refresh tokens, one per request, in
 * alternating slices (A B B A …) so the machine's drift falls on both. Printed with each: the
 * gateway's CPU per refresh (/proc), and on Redis (one redis-server per side) the server's CPU per refresh and the commands
 * the gateway sent per refresh (MONITOR, commands inside Lua scripts not counted: round trips).
 *
 * On Redis a third side runs in the same alternating slices: the refresh floor
 * (servers/refresh-floor.ts), a bare node:http server doing only the work every refresh on
 * Redis must do (the same hashing, sealing, ES256 signing, one script). What it reaches is what
 * this machine allows a Node refresh at all, so the gateway's figure is read against it too.
 * A fourth side is the empty-store gateway reaching its redis-server through the server's unix
 * socket (`unix://…`, as a gateway on Redis's own machine can): loopback TCP costs both
 * processes more per round trip than the socket does.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { startRedis, type TestRedis } from "../../test/support/redis.js";
import { type ChildServer, type LoadResult, load, mergeLoads, type Row, startServer } from "../lib.js";
import { cpuMillis } from "../proctree.js";
import { type ConfigTree, openSeedStore, seedGrants } from "./seed.js";

/** Refresh tokens each gateway spends in the measured slices. */
const REQUESTS = Number(process.env.BENCH_REFRESH_COUNT ?? 12_000);
/** Grants in the "big store" side. */
const STORED = Number(process.env.BENCH_REFRESH_STORED ?? 200_000);
/** Engines to run, comma-separated (default both). */
const STORES = (process.env.BENCH_REFRESH_STORES ?? "sqlite,redis").split(",");
const SLICES = 4;
const WARMUP = 500;
/** Refreshes watched with MONITOR to count round trips. */
const COUNTED = 200;
const REDIS_TARGET_RPS = 5_000;
const STORED_TARGET_RATIO = 0.9;

interface Side {
  label: string;
  gw: ChildServer<{ url: string; clientId: string }>;
  tokens: string[];
  next: number;
  cleanup: () => void;
}

/** Spends the side's next `amount` tokens, 10 connections, one refresh each. */
async function spend(side: Side, amount: number): Promise<LoadResult> {
  const { url, clientId } = side.gw.info;
  const first = side.next;
  side.next += amount;
  if (side.next > side.tokens.length) throw new Error(`${side.label}: out of refresh tokens`);
  let i = first;
  return load({
    url: `${url}/token`,
    amount,
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    requests: [
      {
        setupRequest: (req) => ({
          ...req,
          body: `grant_type=refresh_token&client_id=${clientId}&refresh_token=${side.tokens[i++]}`,
        }),
      },
    ],
  });
}

function storeTree(store: "sqlite" | "redis", redis: TestRedis | undefined, prefix: string): ConfigTree {
  // A server started with `unixSocket` is reached through its socket.
  const url = redis?.socket ? `unix://${redis.socket}` : redis?.url;
  return {
    data_dir: mkdtempSync(join(tmpdir(), `mcpgw-bench-refresh-${store}-`)),
    store: store === "redis" ? { type: "redis", redis: { url, key_prefix: prefix } } : { type: "sqlite" },
    // Redis needs the sealing secret every instance shares (SQLite generates one in data_dir).
    ...(store === "redis" ? { keys: { encryption_secret: "bench secret, not a real one" } } : {}),
  };
}

/**
 * The floor on `redis` (a redis-server of its own), with one family and grant seeded per token
 * as the gateway's seeding does for its own (servers/refresh-floor.ts reads and checks both).
 */
async function startFloor(redis: TestRedis): Promise<Side> {
  const clientId = "floor-client-000000000";
  const tokens = Array.from(
    { length: REQUESTS + WARMUP + COUNTED },
    (_, i) => `${String(i).padStart(16, "0")}.${randomBytes(32).toString("base64url")}`,
  );
  const client = new Redis(redis.url);
  try {
    for (let i = 0; i < tokens.length; i += 1000) {
      const batch = client.pipeline();
      for (const token of tokens.slice(i, i + 1000)) {
        const family = token.slice(0, 16);
        batch.set(`floor:fam:${family}`, createHash("sha256").update(token).digest("base64url"));
        batch.set(
          `floor:grant:${family}`,
          JSON.stringify({
            sid: family,
            sub: `user-${family}`,
            client_id: clientId,
            scope: ["mcp", "offline_access"],
            resources: ["http://127.0.0.1/gw/echo/mcp"],
            auth_time: 1,
          }),
        );
      }
      await batch.exec();
    }
  } finally {
    client.disconnect();
  }
  const floor = await startServer("refresh-floor", { BENCH_REDIS_URL: redis.url });
  return {
    label: "floor",
    gw: { ...floor, info: { url: floor.info.url, clientId } },
    tokens,
    next: 0,
    cleanup: () => {},
  };
}

async function startSide(label: string, tree: ConfigTree, profile: string[]): Promise<Side> {
  const file = join(tmpdir(), `mcpgw-bench-tokens-${process.pid}-${label.replace(/\W+/g, "-")}.json`);
  const gw = await startServer<{ url: string; clientId: string; tokensFile: string }>(
    "gateway",
    {
      BENCH_CONFIG: JSON.stringify({
        ...tree,
        port: 0,
        // One client refreshing thousands of times a second from one address is the load, not
        // abuse: the brakes stay on (their counting is part of the cost) with room for it.
        rate_limits: { token: { per_client: { max: 1_000_000 }, per_address: { max: 1_000_000 } } },
      }),
      BENCH_SEED_REFRESH: String(REQUESTS + WARMUP + 2 * COUNTED),
      BENCH_TOKENS_FILE: file,
    },
    profile,
  );
  const tokens = JSON.parse(readFileSync(gw.info.tokensFile, "utf8")) as string[];
  rmSync(file, { force: true });
  return {
    label,
    gw,
    tokens,
    next: 0,
    cleanup: () => rmSync(tree.data_dir as string, { recursive: true, force: true }),
  };
}

/** Commands the gateway sent Redis during `run` (MONITOR; script-internal ones excluded). */
async function countCommands(redisUrl: string, run: () => Promise<unknown>): Promise<Map<string, number>> {
  const client = new Redis(redisUrl);
  const monitor = await client.monitor();
  const counts = new Map<string, number>();
  monitor.on("monitor", (_time: string, args: string[], source: string) => {
    // MONITOR's source is "lua" for a script's commands; a client's is its address or socket path.
    if (source === "lua") return;
    const name = String(args[0]).toLowerCase();
    counts.set(name, (counts.get(name) ?? 0) + 1);
  });
  // monitor() resolves once MONITOR is acknowledged: from here on every command is streamed.
  await run();
  // Let the last commands arrive on the monitor connection.
  await new Promise((resolve) => setTimeout(resolve, 200));
  monitor.disconnect();
  client.disconnect();
  return counts;
}

/** Redis server CPU so far (user + system), ms. */
export async function redisCpuMs(redisUrl: string): Promise<number> {
  const client = new Redis(redisUrl);
  try {
    const info = await client.info("cpu");
    const field = (name: string) => Number(info.match(new RegExp(`^${name}:([\\d.]+)`, "m"))?.[1] ?? 0);
    return (field("used_cpu_user") + field("used_cpu_sys")) * 1000;
  } finally {
    client.disconnect();
  }
}

interface Measured {
  load: LoadResult;
  gatewayCpuMs: number;
  redisCpuMs?: number;
  commands?: Map<string, number>;
}

async function measureEngine(
  store: "sqlite" | "redis",
  /**
   * One redis-server per side (Redis only: empty, stored, the floor's, and the unix socket
   * side's), so the empty side's server really is empty.
   */
  servers: [TestRedis, TestRedis, TestRedis, TestRedis] | undefined,
): Promise<{ empty: Measured; stored: Measured; floor?: Measured; unix?: Measured }> {
  const profile =
    process.env.BENCH_PROFILE === "1"
      ? ["--cpu-prof", `--cpu-prof-dir=${join(tmpdir(), "mcpgw-bench-profiles")}`]
      : [];
  const emptyTree = storeTree(store, servers?.[0], "bench-empty:");
  const storedTree = storeTree(store, servers?.[1], "bench-stored:");
  const seed = await openSeedStore(storedTree);
  try {
    const seconds = await seedGrants(seed.store, { count: STORED, users: 10_000, clients: 1_000 });
    process.stderr.write(`refresh (${store}): seeded ${STORED} grants in ${seconds.toFixed(1)} s\n`);
  } finally {
    await seed.close();
  }
  const sides = [
    await startSide(`${store} empty`, emptyTree, profile),
    await startSide(`${store} ${STORED} stored`, storedTree, profile),
  ];
  if (servers) {
    sides.push(await startFloor(servers[2]));
    sides.push(
      await startSide(`${store} empty, unix socket`, storeTree(store, servers[3], "bench-unix:"), profile),
    );
  }
  const serverOf = (i: number) => servers?.[i];
  try {
    for (const side of sides) await spend(side, WARMUP);
    const commands: Array<Map<string, number> | undefined> = [];
    for (const [i, side] of sides.entries()) {
      // The floor's commands are its own; the others are the gateway's.
      const redis = i !== 2 ? servers?.[i] : undefined;
      commands.push(redis ? await countCommands(redis.url, () => spend(side, COUNTED)) : undefined);
      if (!redis) await spend(side, COUNTED);
    }
    const slices: LoadResult[][] = sides.map(() => []);
    const cpu = sides.map(() => 0);
    const serverCpu = sides.map(() => 0);
    const forward = sides.map((_, i) => i);
    for (let round = 0; round < SLICES; round++) {
      // A B (C), (C) B A, A B (C), …
      const order = round % 2 === 0 ? forward : [...forward].reverse();
      for (const i of order) {
        const side = sides[i] as Side;
        const redis = serverOf(i);
        const cpuBefore = cpuMillis(side.gw.pid);
        const redisBefore = redis ? await redisCpuMs(redis.url) : 0;
        slices[i]?.push(await spend(side, Math.floor(REQUESTS / SLICES)));
        cpu[i] = (cpu[i] ?? 0) + cpuMillis(side.gw.pid) - cpuBefore;
        if (redis) serverCpu[i] = (serverCpu[i] ?? 0) + (await redisCpuMs(redis.url)) - redisBefore;
      }
    }
    const measured = sides.map((_, i): Measured => {
      const merged = mergeLoads(slices[i] ?? []);
      return {
        load: merged,
        gatewayCpuMs: (cpu[i] ?? 0) / merged.total,
        ...(servers ? { redisCpuMs: (serverCpu[i] ?? 0) / merged.total } : {}),
        ...(commands[i] ? { commands: commands[i] } : {}),
      };
    });
    return {
      empty: measured[0] as Measured,
      stored: measured[1] as Measured,
      ...(measured[2] ? { floor: measured[2] } : {}),
      ...(measured[3] ? { unix: measured[3] } : {}),
    };
  } finally {
    for (const side of sides) {
      await side.gw.stop();
      side.cleanup();
    }
  }
}

function commandText(commands: Map<string, number> | undefined): string {
  if (!commands) return "";
  const total = [...commands.values()].reduce((a, b) => a + b, 0);
  const parts = [...commands.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => `${name} ${(n / COUNTED).toFixed(2)}`);
  return `${(total / COUNTED).toFixed(2)} (${parts.join(", ")})`;
}

export async function tokenScenarios(
  baselineRps: (amount: number) => Promise<LoadResult>,
): Promise<{ rows: Row[]; note: string }> {
  const rows: Row[] = [];
  const lines: string[] = [];
  const redis = await startRedis();
  const second = redis ? await startRedis() : undefined;
  const third = redis ? await startRedis() : undefined;
  const fourth = redis ? await startRedis({ unixSocket: true }) : undefined;
  try {
    for (const store of ["sqlite", "redis"] as const) {
      if ((store === "redis" && !redis) || !STORES.includes(store)) continue;
      const { empty, stored, floor, unix } = await measureEngine(
        store,
        store === "redis" && redis && second && third && fourth ? [redis, second, third, fourth] : undefined,
      );
      const base = await baselineRps(REQUESTS);
      rows.push({
        scenario: `refresh grant (${store})`,
        subject: empty.load,
        baseline: base,
        baselineName: "bare node:http POST",
        ...(store === "redis"
          ? { goal: { kind: "rps", min: REDIS_TARGET_RPS } as const }
          : { target: "reported" }),
      });
      if (unix)
        rows.push({
          scenario: `refresh grant (${store} through its unix socket)`,
          subject: unix.load,
          baseline: base,
          baselineName: "bare node:http POST",
          goal: { kind: "rps", min: REDIS_TARGET_RPS },
        });
      if (floor)
        rows.push({
          scenario: `refresh grant (${store}) vs the refresh floor`,
          subject: empty.load,
          baseline: floor.load,
          baselineName: "node:http + the same crypto + one script",
          target: "reported",
        });
      rows.push({
        scenario: `refresh grant, ${STORED.toLocaleString("en")} grants stored (${store})`,
        subject: stored.load,
        baseline: empty.load,
        baselineName: "same, empty store",
        goal: { kind: "ratio", min: STORED_TARGET_RATIO },
      });
      for (const [name, m] of [
        ["empty", empty],
        [`${STORED.toLocaleString("en")} grants`, stored],
        ...(unix ? [["empty, unix socket", unix] as const] : []),
        ...(floor ? [["floor (servers/refresh-floor.ts)", floor] as const] : []),
      ] as const) {
        lines.push(
          `| ${store} | ${name} | ${m.load.rps.toFixed(0)} | ${m.gatewayCpuMs.toFixed(3)} | ${m.redisCpuMs?.toFixed(3) ?? ""} | ${commandText(m.commands)} |`,
        );
      }
    }
  } finally {
    await redis?.stop();
    await second?.stop();
    await third?.stop();
    await fourth?.stop();
  }
  const note = [
    "| refresh cost | store | refreshes/s | gateway CPU ms/refresh | redis-server CPU ms/refresh | Redis commands/refresh (round trips) |",
    "|---|---|---:|---:|---:|---|",
    ...lines,
  ].join("\n");
  return { rows, note };
}
