/**
 * A/B of the refresh grant's cost between two builds of the gateway (each a checkout with its
 * own dist/), run side by side: `node --import tsx bench/refresh-ab.ts DIR_A DIR_B`. Each side
 * is a gateway (bench/servers/gateway.ts of its own checkout) on its own store: its own
 * redis-server (REFRESH_AB_STORE=redis, the default) or its own SQLite file (=sqlite), with
 * refresh tokens seeded at start. The sides spend them in alternating slices (A B, B A, …) so
 * the drift of a shared machine falls on both, and each slice prints the gateway's CPU per
 * refresh (user + system of the gateway process, /proc), refreshes per second and, on Redis,
 * redis-server's CPU per refresh (INFO cpu). Medians at the end.
 *
 * Knobs: REFRESH_AB_ROUNDS (6), REFRESH_AB_REQUESTS per slice (3000), REFRESH_AB_CONNECTIONS
 * (10, as the token scenario), REFRESH_AB_PROFILE=1 (a profile of
 * each gateway under load, $TMPDIR/mcpgw-refresh-ab/a.cpuprofile, b.cpuprofile, …),
 * REFRESH_AB_TRANSPORT (Redis only: `tcp` or `unix` per side, comma-separated, e.g. `tcp,unix`
 * with the same DIR twice to compare loopback TCP with Redis's unix socket; default tcp).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startRedis, type TestRedis } from "../test/support/redis.js";
import { type ChildServer, load, startServer } from "./lib.js";
import { cpuMillis } from "./proctree.js";
import { redisCpuMs } from "./scenarios/token.js";

const dirs = process.argv.slice(2);
const STORE = process.env.REFRESH_AB_STORE ?? "redis";
const ROUNDS = Number(process.env.REFRESH_AB_ROUNDS ?? 6);
const REQUESTS = Number(process.env.REFRESH_AB_REQUESTS ?? 3000);
const CONNECTIONS = Number(process.env.REFRESH_AB_CONNECTIONS ?? 10);
const TRANSPORTS = (process.env.REFRESH_AB_TRANSPORT ?? "").split(",").map((t) => t.trim() || "tcp");
for (const transport of TRANSPORTS) {
  if (transport !== "tcp" && transport !== "unix")
    throw new Error(`REFRESH_AB_TRANSPORT: ${transport} is neither tcp nor unix`);
  if (transport === "unix" && STORE !== "redis") throw new Error("REFRESH_AB_TRANSPORT=unix needs Redis");
}
const WARMUP = 1000;
const PROFILE_DIR = join(tmpdir(), "mcpgw-refresh-ab");
if (process.env.REFRESH_AB_PROFILE === "1") mkdirSync(PROFILE_DIR, { recursive: true });

interface Side {
  name: string;
  gw: ChildServer<{ url: string; clientId: string; tokensFile: string }>;
  redis?: TestRedis;
  tokens: string[];
  next: number;
  dataDir: string;
}

async function startSide(index: number, dir: string): Promise<Side> {
  const unix = TRANSPORTS[index] === "unix";
  const name = `${String.fromCharCode(65 + index)} ${dir}${unix ? " (unix socket)" : ""}`;
  const dataDir = mkdtempSync(join(tmpdir(), "mcpgw-refresh-ab-"));
  const redis = STORE === "redis" ? await startRedis({ unixSocket: unix }) : undefined;
  if (STORE === "redis" && !redis) throw new Error("redis-server is not available");
  const tokensFile = join(dataDir, "tokens.json");
  const gw = await startServer<{ url: string; clientId: string; tokensFile: string }>(
    "gateway",
    {
      BENCH_CONFIG: JSON.stringify({
        data_dir: dataDir,
        port: 0,
        store: redis
          ? { type: "redis", redis: { url: unix ? `unix://${redis.socket}` : redis.url } }
          : { type: "sqlite" },
        ...(redis ? { keys: { encryption_secret: "bench secret, not a real one" } } : {}),
        // As the token scenario: the brakes count (their cost is part of a refresh), with room.
        rate_limits: { token: { per_client: { max: 1_000_000 }, per_address: { max: 1_000_000 } } },
      }),
      BENCH_SEED_REFRESH: String(WARMUP + ROUNDS * REQUESTS),
      BENCH_TOKENS_FILE: tokensFile,
      ...(process.env.REFRESH_AB_PROFILE === "1"
        ? { BENCH_CPU_PROFILE: join(PROFILE_DIR, `${String.fromCharCode(97 + index)}.cpuprofile`) }
        : {}),
    },
    [],
    dir,
  );
  const tokens = JSON.parse(readFileSync(gw.info.tokensFile, "utf8")) as string[];
  return { name, gw, ...(redis ? { redis } : {}), tokens, next: 0, dataDir };
}

interface Slice {
  cpuMs: number;
  rps: number;
  redisMs?: number;
}

async function spend(side: Side, amount: number): Promise<Slice> {
  const { url, clientId } = side.gw.info;
  let i = side.next;
  side.next += amount;
  const cpuBefore = cpuMillis(side.gw.pid);
  const redisBefore = side.redis ? await redisCpuMs(side.redis.url) : 0;
  const run = await load({
    url: `${url}/token`,
    amount,
    connections: CONNECTIONS,
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
  if (run.errors + run.non2xx > 0) throw new Error(`${side.name}: ${run.errors + run.non2xx} failed`);
  const cpuMs = (cpuMillis(side.gw.pid) - cpuBefore) / run.total;
  const redisMs = side.redis ? ((await redisCpuMs(side.redis.url)) - redisBefore) / run.total : undefined;
  return { cpuMs, rps: run.rps, ...(redisMs !== undefined ? { redisMs } : {}) };
}

const sides: Side[] = [];
for (const [i, dir] of dirs.entries()) sides.push(await startSide(i, dir));
try {
  for (const side of sides) await spend(side, WARMUP);
  const results = new Map<string, Slice[]>(sides.map((s) => [s.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) {
      const slice = await spend(side, REQUESTS);
      results.get(side.name)?.push(slice);
      process.stdout.write(
        `round ${round} ${side.name}: ${(slice.cpuMs * 1000).toFixed(0)} µs/refresh, ${slice.rps.toFixed(0)}/s${
          slice.redisMs !== undefined ? `, redis ${(slice.redisMs * 1000).toFixed(0)} µs` : ""
        }\n`,
      );
    }
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] as number;
  for (const [name, slices] of results) {
    const redis = slices.flatMap((s) => (s.redisMs === undefined ? [] : [s.redisMs]));
    process.stdout.write(
      `${name}: median ${(median(slices.map((s) => s.cpuMs)) * 1000).toFixed(0)} µs gateway CPU/refresh, ${median(
        slices.map((s) => s.rps),
      ).toFixed(
        0,
      )}/s${redis.length ? `, redis-server ${(median(redis) * 1000).toFixed(0)} µs/refresh` : ""}\n`,
    );
  }
} finally {
  for (const side of sides) {
    await side.gw.stop();
    await side.redis?.stop();
    rmSync(side.dataDir, { recursive: true, force: true });
  }
}
if (process.env.REFRESH_AB_PROFILE === "1") process.stdout.write(`CPU profiles: ${PROFILE_DIR}\n`);
