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
  startServer,
} from "./lib.js";
import { bridgeScenarios } from "./scenarios/bridge.js";
import { clusterScenarios } from "./scenarios/cluster.js";
import { ownerScenarios } from "./scenarios/owners.js";
import { proxyScenarios, rawUpstreamScenario } from "./scenarios/proxy.js";
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

/**
 * /verify on a gateway that logs as a default install does (log_level info, one line per
 * request, written to /dev/null): what `log_requests: false` buys back.
 */
async function loggedVerify(upstreamUrl: string, profile: string[]): Promise<Row> {
  const gateway = await startServer<{ url: string; accessToken: string }>(
    "gateway",
    {
      BENCH_CONFIG: JSON.stringify({
        port: 0,
        log_level: "info",
        services: { [SERVICE]: { url: upstreamUrl } },
      }),
      BENCH_ACCESS_TOKEN_FOR: SERVICE,
      BENCH_LOG_DEVNULL: "1",
    },
    profile,
  );
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
    );
    if (note) notes.push(note);
    return row;
  } finally {
    await gateway.stop();
  }
}

/**
 * The proxy's ceiling: a raw fast upstream (a fixed JSON answer), reached through a gateway of
 * its own, through the bare pass-through, and directly.
 */
async function rawUpstreamRow(profile: string[]): Promise<{ row: Row; note: string }> {
  const upstream = await startServer("raw-upstream");
  try {
    const gateway = await startServer<{ url: string; accessToken: string }>(
      "gateway",
      {
        BENCH_CONFIG: JSON.stringify({ port: 0, services: { [SERVICE]: { url: upstream.info.url } } }),
        BENCH_ACCESS_TOKEN_FOR: SERVICE,
      },
      profile,
    );
    const passthrough = await startServer("passthrough", { TARGET: upstream.info.url });
    try {
      return await rawUpstreamScenario({
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
      await gateway.stop();
    }
  } finally {
    await upstream.stop();
  }
}

/** The resource side: a real SDK upstream, and a gateway protecting it as service `echo`. */
async function resourceScenarios(): Promise<Row[]> {
  const upstream = await startServer("upstream");
  const profile = process.env.BENCH_PROFILE === "1" ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`] : [];
  try {
    const gateway = await startServer<{ url: string; accessToken: string }>(
      "gateway",
      {
        BENCH_CONFIG: JSON.stringify({ port: 0, services: { [SERVICE]: { url: upstream.info.url } } }),
        BENCH_ACCESS_TOKEN_FOR: SERVICE,
      },
      profile,
    );
    try {
      const target = {
        gatewayUrl: gateway.info.url,
        accessToken: gateway.info.accessToken,
        service: SERVICE,
      };
      const silent = await verifyScenario({ ...target, pid: gateway.pid }, { ...bare.info, pid: bare.pid });
      if (silent.note) notes.push(silent.note);
      const verify = silent.row;
      const logged = await loggedVerify(upstream.info.url, profile);
      if (verifyOnly) return [verify, logged];
      const passthrough = await startServer("passthrough", { TARGET: upstream.info.url });
      try {
        const proxy = await proxyScenarios({
          ...target,
          upstreamUrl: upstream.info.url,
          passthroughUrl: passthrough.info.url,
          gatewayPid: gateway.pid,
          passthroughPid: passthrough.pid,
        });
        notes.push(proxy.note);
        const raw = await rawUpstreamRow(profile);
        notes.push(raw.note);
        return [verify, logged, ...proxy.rows, raw.row];
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
