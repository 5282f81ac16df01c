/**
 * `npm run bench`: every scenario in bench/scenarios, each printed with a baseline measured in
 * the same run. Results go to stdout as a markdown table (paste into bench/RESULTS.md). Exits
 * non-zero only when requests errored; missed targets are reported in the table, not enforced.
 *
 * BENCH_ONLY=verify runs the two /verify rows alone (silent, and with the default access line),
 * each with the gateway's and bare node:http's CPU per request.
 *
 * BENCH_PROFILE=1 runs the resource-side gateway child with `--cpu-prof` (profiles land in
 * $TMPDIR/mcpgw-bench-profiles/; open them in Chrome DevTools or speedscope). BENCH_ONLY=token,
 * BENCH_ONLY=resource, BENCH_ONLY=owners, BENCH_ONLY=bridge or BENCH_ONLY=cluster runs one group
 * (bridge, cluster and owners need `npm run build` first: they run the real CLI from dist/).
 * The cluster group (1,000 shared-mode bridged sessions on one instance; one instance vs two
 * behind nginx on one Redis, bench/scenarios/cluster.ts) also runs as part of BENCH_ONLY=bridge,
 * and needs redis-server and nginx.
 */
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import {
  formatMemoryRows,
  formatRows,
  type LoadResult,
  load,
  type MemoryRow,
  type Row,
  startGateway,
  startServer,
} from "./lib.js";
import { bridgeScenarios } from "./scenarios/bridge.js";
import { clusterScenarios } from "./scenarios/cluster.js";
import { ownerScenarios } from "./scenarios/owners.js";
import { type ProxyTarget, proxyScenarios, rawUpstreamScenario } from "./scenarios/proxy.js";
import { tokenScenarios } from "./scenarios/token.js";
import { verifyScenario } from "./scenarios/verify.js";

const SERVICE = "echo";
/** Where BENCH_PROFILE=1 puts the gateway's CPU profiles (outside the work tree). */
const PROFILE_DIR = join(tmpdir(), "mcpgw-bench-profiles");

/** Load average, one minute: other work on the machine skews every figure, so it is printed. */
const load1 = (): string => loadavg()[0]?.toFixed(2) ?? "?";
const startedAt = new Date();
const loadBefore = load1();

const bare = await startServer("bare");
/** Lines printed under the tables (figures that are not a ratio against a baseline). */
const notes: string[] = [];
const bareLoad = (amount: number): Promise<LoadResult> =>
  load({ url: bare.info.url, method: "POST", body: "grant_type=x", amount });

/** The gateway config every resource-side row uses: one service `echo` in front of `upstreamUrl`. */
const echoConfig = (upstreamUrl: string, more: Record<string, unknown> = {}) => ({
  port: 0,
  ...more,
  services: { [SERVICE]: { url: upstreamUrl } },
});

/**
 * /verify on a gateway that logs as a default install does (log_level info, one line per
 * request, written to /dev/null): what `log_requests: false` buys back.
 */
async function loggedVerify(upstreamUrl: string, profile: string[]): Promise<Row> {
  const gateway = await startGateway(echoConfig(upstreamUrl, { log_level: "info" }), {
    tokenFor: SERVICE,
    env: { BENCH_LOG_DEVNULL: "1" },
    nodeArgs: profile,
  });
  try {
    const target = {
      gatewayUrl: gateway.info.url,
      accessToken: gateway.info.accessToken,
      service: SERVICE,
      pid: gateway.pid,
    };
    const { row, note } = await verifyScenario(
      target,
      { ...bare.info, pid: bare.pid },
      "log_level info, a line per request to /dev/null",
      0.85,
    );
    if (note) notes.push(note);
    return row;
  } finally {
    await gateway.stop();
  }
}

/**
 * Starts the upstream `bench/servers/{upstreamName}.ts`, a gateway protecting it as service
 * `echo` (its node run with `profile`) and the bare pass-through in front of it; runs `rows`
 * against them, and stops all three whatever happens.
 */
async function withProxiedUpstream<T>(
  upstreamName: "upstream" | "raw-upstream",
  profile: string[],
  rows: (target: ProxyTarget) => Promise<T>,
): Promise<T> {
  const upstream = await startServer(upstreamName);
  try {
    const gateway = await startGateway(echoConfig(upstream.info.url), {
      tokenFor: SERVICE,
      nodeArgs: profile,
    });
    try {
      const passthrough = await startServer("passthrough", { TARGET: upstream.info.url });
      try {
        return await rows({
          gatewayUrl: gateway.info.url,
          accessToken: gateway.info.accessToken,
          service: SERVICE,
          upstreamUrl: upstream.info.url,
          passthroughUrl: passthrough.info.url,
          gatewayPid: gateway.pid,
          passthroughPid: passthrough.pid,
        });
      } finally {
        await passthrough.stop();
      }
    } finally {
      await gateway.stop();
    }
  } finally {
    await upstream.stop();
  }
}

/**
 * The resource side: a real SDK upstream and a gateway protecting it as service `echo` (with
 * BENCH_ONLY=verify, only the two /verify rows); then the proxy's ceiling: a raw fast upstream
 * (a fixed JSON answer), reached through a gateway of its own, through the bare pass-through,
 * and directly.
 */
async function resourceScenarios(): Promise<Row[]> {
  const profile = process.env.BENCH_PROFILE === "1" ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`] : [];
  const sdkRows = await withProxiedUpstream("upstream", profile, async (target) => {
    const silent = await verifyScenario(
      { ...target, pid: target.gatewayPid },
      { ...bare.info, pid: bare.pid },
    );
    if (silent.note) notes.push(silent.note);
    const logged = await loggedVerify(target.upstreamUrl, profile);
    if (verifyOnly) return [silent.row, logged];
    const proxy = await proxyScenarios(target);
    notes.push(proxy.note);
    return [silent.row, logged, ...proxy.rows];
  });
  if (verifyOnly) return sdkRows;
  const raw = await withProxiedUpstream("raw-upstream", profile, rawUpstreamScenario);
  notes.push(raw.note);
  return [...sdkRows, raw.row];
}

const only = process.env.BENCH_ONLY;
const verifyOnly = only === "verify";

try {
  const wants = (group: "token" | "resource" | "owners" | "bridge" | "cluster") =>
    !only || only === group || (group === "cluster" && only === "bridge");
  const token = wants("token") ? await tokenScenarios(bareLoad) : undefined;
  if (token) notes.push(token.note);
  const resource = wants("resource") || verifyOnly;
  const rows: Row[] = [...(token?.rows ?? []), ...(resource ? await resourceScenarios() : [])];
  if (wants("owners")) notes.push(await ownerScenarios());
  const memory: MemoryRow[] = [];
  const failures: string[] = [];
  if (wants("bridge")) {
    const bridge = await bridgeScenarios();
    rows.push(...bridge.rows);
    memory.push(...bridge.memory);
    failures.push(...bridge.failures);
  }
  if (wants("cluster")) {
    const cluster = await clusterScenarios();
    rows.push(...cluster.rows);
    notes.push(...cluster.notes);
  }
  process.stdout.write(
    `\n${startedAt.toISOString()} · node ${process.version} · ${availableParallelism()} CPUs · ` +
      `load average ${loadBefore} before, ${load1()} after\n\n${formatRows(rows)}\n`,
  );
  if (memory.length) process.stdout.write(`\n${formatMemoryRows(memory)}\n`);
  for (const note of notes) process.stdout.write(`\n${note}\n`);
  if (process.env.BENCH_PROFILE === "1") process.stdout.write(`\nCPU profiles: ${PROFILE_DIR}\n`);
  const failed = rows.filter(
    (r) => r.subject.errors + r.subject.non2xx + r.baseline.errors + r.baseline.non2xx > 0,
  );
  if (failed.length) {
    process.stderr.write(`errors in: ${failed.map((r) => r.scenario).join(", ")}\n`);
    process.exitCode = 1;
  }
  if (failures.length) {
    process.stderr.write(`bridge clean-up failed: ${failures.join("; ")}\n`);
    process.exitCode = 1;
  }
} finally {
  await bare.stop();
}
