/**
 * Scale-out rows (issue 12), both reported as measured (no target):
 *
 * - 1,000 concurrent bridged sessions in shared mode on one gateway instance: one stdio child
 *   (the in-box `time` server) serves every session. Each session is initialised and does a
 *   checked tools/call, through the gateway with a bearer token; all stay open together. Memory
 *   of the gateway's process tree (RSS, PSS) before and after, per session; then tools/call
 *   throughput spread over the 1,000 sessions, against the same gateway and child spread over
 *   20 sessions (so the ratio is what the extra sessions cost).
 * - one gateway instance vs two behind real nginx (deploy/nginx/gateway-cluster.conf as shipped,
 *   round-robin) on one redis-server: proxied tools/call (a real SDK upstream, service `echo`)
 *   and /verify, each through two nginx servers (one in front of instance A only, one in front
 *   of A and B), in alternating slices. On a two-core machine shared by nginx, the upstream,
 *   the load generator and the gateways, a second instance has little spare CPU to use.
 *
 * Needs `npm run build` (the gateway runs from dist/), redis-server and nginx.
 */
import { existsSync, readdirSync } from "node:fs";
import { deployFile, NGINX, type RunningProxy, startNginxWith } from "../../test/support/proxies.js";
import { startRedis } from "../../test/support/redis.js";
import { freePort } from "../../test/support/upstream.js";
import {
  type BenchGateway,
  interleaveAll,
  type LoadResult,
  load,
  type Row,
  startGateway,
  startServer,
} from "../lib.js";
import { type TreeMemory, treeMemory } from "../proctree.js";
import { callBody, MCP_HEADERS, openSessions, PROTOCOL_VERSION, sessionCallLoad } from "../sessions.js";
import { STDIO_SERVER } from "./bridge-procs.js";

const SESSIONS = Number(process.env.BENCH_CLUSTER_SESSIONS ?? 1000);
const FEW_SESSIONS = 20;
/** Sessions opened at once while the 1,000 are set up. */
const OPENING = 25;
const SETTLE_MS = 1500;
const ROUNDS = 4;
/**
 * nginx closes a client connection after this many requests (`keepalive_requests`, its default,
 * which the shipped config keeps). autocannon does not read the answer's `Connection: close`: it
 * writes its next request into the closing socket and counts the reset as an error. Reconnecting
 * on its own after as many requests, as a real client reading the header would, the load sees
 * nginx's recycling without the false errors.
 */
const NGINX_KEEPALIVE_REQUESTS = 1000;
const SLICE_S = 2;
const WARMUP_S = 1;
const MIB = 1024 * 1024;

export interface ClusterResults {
  rows: Row[];
  notes: string[];
}

/** Open file descriptors of a process (sockets, pipes, files). */
const fds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

/** The gateway tree's memory after the children and the heap settle. */
async function settled(pid: number): Promise<TreeMemory> {
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  return treeMemory(pid);
}

async function sharedSessions(): Promise<{ row: Row; note: string }> {
  const gateway = await startGateway(
    {
      port: 0,
      services: {
        time: {
          command: STDIO_SERVER[0],
          args: STDIO_SERVER.slice(1),
          session_mode: "shared",
          max_sessions: SESSIONS + FEW_SESSIONS + 10,
        },
      },
    },
    { tokenFor: "time" },
  );
  try {
    const endpoint = { url: `${gateway.info.url}/time/mcp`, token: gateway.info.accessToken };
    // The child and the first-request costs (lazy modules, JIT) are not per-session costs.
    const few = await openSessions(endpoint, FEW_SESSIONS, OPENING);
    const before = await settled(gateway.pid);
    const fdsBefore = fds(gateway.pid);
    const started = performance.now();
    const many = await openSessions(endpoint, SESSIONS, OPENING);
    const openS = (performance.now() - started) / 1000;
    const after = await settled(gateway.pid);
    const fdsAfter = fds(gateway.pid);
    const [subject, baseline] = (await interleaveAll(
      [sessionCallLoad(endpoint, many), sessionCallLoad(endpoint, few)],
      {
        rounds: ROUNDS,
        sliceS: SLICE_S,
        warmupS: WARMUP_S,
      },
    )) as [LoadResult, LoadResult];
    const end = await settled(gateway.pid);
    const per = (key: "rss" | "pss" | "parentRss") => ((after[key] - before[key]) / SESSIONS / MIB) * 1024;
    const note =
      `${SESSIONS} shared-mode bridged sessions on one gateway (processes in its tree: ` +
      `${before.processes} with ${FEW_SESSIONS} sessions, ${after.processes} with ${SESSIONS + FEW_SESSIONS}): gateway tree RSS ${(before.rss / MIB).toFixed(1)} MiB with ${FEW_SESSIONS} ` +
      `sessions, ${(after.rss / MIB).toFixed(1)} MiB with ${SESSIONS + FEW_SESSIONS} ` +
      `(${per("rss").toFixed(1)} KiB RSS, ${per("pss").toFixed(1)} KiB PSS, ${per("parentRss").toFixed(1)} KiB ` +
      `in the gateway process per session), ${(end.rss / MIB).toFixed(1)} MiB after the throughput run; ` +
      `gateway file descriptors ${fdsBefore} with ${FEW_SESSIONS} sessions, ${fdsAfter} with ${SESSIONS + FEW_SESSIONS}; ` +
      `${SESSIONS} sessions opened (initialize, initialized, tools/call) in ${openS.toFixed(1)} s, ` +
      `${OPENING} at a time (${((SESSIONS * 3) / openS).toFixed(0)} requests/s)`;
    return {
      row: {
        scenario: `bridged tools/call via the gateway, shared mode, over ${SESSIONS} open sessions`,
        subject,
        baseline,
        baselineName: `same gateway and child, ${FEW_SESSIONS} sessions`,
        target: "(reported)",
      },
      note,
    };
  } finally {
    await gateway.stop();
  }
}

async function oneVersusTwo(): Promise<Row[]> {
  if (!existsSync(NGINX)) throw new Error(`the cluster rows need nginx at ${NGINX}`);
  const redis = await startRedis();
  if (!redis) throw new Error("the cluster rows need redis-server");
  const servers: BenchGateway[] = [];
  const proxies: RunningProxy[] = [];
  const upstream = await startServer("upstream");
  try {
    const [onePort, twoPort] = [await freePort(), await freePort()];
    // One public_url for both instances (the two-instance nginx's); tokens name it.
    const publicUrl = `http://127.0.0.1:${twoPort}`;
    const config = {
      public_url: publicUrl,
      port: 0,
      trust_proxy: "127.0.0.1",
      store: { type: "redis", redis: { url: redis.url } },
      keys: { encryption_secret: "bench-sealing-secret-shared-by-both-instances" },
      services: { echo: { url: upstream.info.url } },
    };
    // One after the other: the first writes the signing key to Redis, the second loads it.
    for (let i = 0; i < 2; i++) {
      servers.push(await startGateway(config, i === 0 ? { tokenFor: "echo" } : {}));
    }
    const [a, b] = servers as [BenchGateway, BenchGateway];
    const hostPort = (u: string) => new URL(u).host;
    const template = deployFile("nginx/gateway-cluster.conf");
    proxies.push(
      await startNginxWith(template, { PORT: onePort, GATEWAY_SERVERS: `server ${hostPort(a.info.url)};` }),
    );
    proxies.push(
      await startNginxWith(template, {
        PORT: twoPort,
        GATEWAY_SERVERS: `server ${hostPort(a.info.url)}; server ${hostPort(b.info.url)};`,
      }),
    );
    const token = a.info.accessToken;
    const mcpHeaders = {
      ...MCP_HEADERS,
      authorization: `Bearer ${token}`,
      "mcp-protocol-version": PROTOCOL_VERSION,
    };
    const echo = callBody(1, "echo", { text: "hello" });
    // Both instances answer, through both nginx servers (the token from A verifies on B).
    for (const port of [onePort, onePort, twoPort, twoPort]) {
      const res = await fetch(`http://127.0.0.1:${port}/echo/mcp`, {
        method: "POST",
        headers: mcpHeaders,
        body: echo,
      });
      const text = await res.text();
      if (res.status !== 200 || !text.includes('"hello"'))
        throw new Error(`tools/call via nginx :${port} answered ${res.status}: ${text.slice(0, 300)}`);
    }
    const call = (port: number) => (duration: number) =>
      load({
        url: `http://127.0.0.1:${port}/echo/mcp`,
        method: "POST",
        headers: mcpHeaders,
        body: echo,
        duration,
        reconnectRate: NGINX_KEEPALIVE_REQUESTS,
      });
    const verifyHeaders = {
      authorization: `Bearer ${token}`,
      "x-forwarded-host": hostPort(publicUrl),
      "x-forwarded-uri": "/echo/mcp",
      "x-forwarded-proto": "http",
      "x-forwarded-method": "POST",
    };
    const verify = (port: number) => (duration: number) =>
      load({
        url: `http://127.0.0.1:${port}/verify?service=echo`,
        headers: verifyHeaders,
        duration,
        reconnectRate: NGINX_KEEPALIVE_REQUESTS,
      });
    const options = { rounds: ROUNDS, sliceS: SLICE_S, warmupS: WARMUP_S };
    const [twoCalls, oneCall] = (await interleaveAll([call(twoPort), call(onePort)], options)) as [
      LoadResult,
      LoadResult,
    ];
    const [twoVerify, oneVerify] = (await interleaveAll([verify(twoPort), verify(onePort)], options)) as [
      LoadResult,
      LoadResult,
    ];
    return [
      {
        scenario: "proxied tools/call, two instances behind nginx round-robin, one Redis",
        subject: twoCalls,
        baseline: oneCall,
        baselineName: "one instance behind the same nginx config",
        target: "(reported)",
      },
      {
        scenario: "GET /verify, two instances behind nginx round-robin, one Redis",
        subject: twoVerify,
        baseline: oneVerify,
        baselineName: "one instance behind the same nginx config",
        target: "(reported)",
      },
    ];
  } finally {
    for (const p of proxies) await p.close();
    for (const s of servers) await s.stop();
    await upstream.stop();
    await redis.stop();
  }
}

export async function clusterScenarios(): Promise<ClusterResults> {
  const shared = await sharedSessions();
  const scaled = await oneVersusTwo();
  return { rows: [shared.row, ...scaled], notes: [shared.note] };
}
