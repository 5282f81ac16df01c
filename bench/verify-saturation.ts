/**
 * /verify at saturation (10 connections), CPU per request of every thread of each server, of
 * the load generator (this process) and of the whole machine, next to the req/s:
 * `node --import tsx bench/verify-saturation.ts [DIR_A DIR_B …]`. Sides: bare node:http, this
 * checkout's gateway silent (unless VERIFY_SAT_SILENT=0), and each DIR's gateway (a checkout
 * with its own dist/; none given: this one) logging a line per request to /dev/null. Measured
 * in alternating slices (VERIFY_SAT_ROUNDS of VERIFY_SAT_SLICE_S seconds, reversed every other
 * round). On two cores the server's main thread, its other threads (GC helpers, the thread
 * pool that writes the log) and the load generator share the machine: a thread's CPU shows
 * here, where the 4-connection figure of bench/verify-ab.ts counts only the process.
 */
import { readdirSync, readFileSync } from "node:fs";
import { type ChildServer, load, startServer } from "./lib.js";

/** /proc's clock ticks per second (USER_HZ). */
const TICK_HZ = 100;
const SLICE_S = Number(process.env.VERIFY_SAT_SLICE_S ?? 2);
const ROUNDS = Number(process.env.VERIFY_SAT_ROUNDS ?? 6);
const CONNECTIONS = 10;

/** CPU ms of `pid`'s main thread and of all its other threads, from /proc/PID/task/*\/stat. */
function threadCpu(pid: number): { main: number; other: number } {
  const cpu = { main: 0, other: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    } catch {
      continue; // the thread ended between listing and reading
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / TICK_HZ;
    if (Number(tid) === pid) cpu.main += ms;
    else cpu.other += ms;
  }
  return cpu;
}

/** Busy CPU ms of the whole machine (all cores), from /proc/stat. */
function machineCpu(): number {
  const ticks = (readFileSync("/proc/stat", "utf8").split("\n")[0] as string)
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const total = ticks.reduce((a, b) => a + b, 0);
  return ((total - (ticks[3] as number) - (ticks[4] as number)) * 1000) / TICK_HZ;
}

function ownCpu(): number {
  const used = process.cpuUsage();
  return (used.user + used.system) / 1000;
}

type Server = ChildServer<{ url: string; accessToken?: string }>;
const gateway = (log: boolean, cwd?: string): Promise<Server> =>
  startServer(
    "gateway",
    {
      BENCH_CONFIG: JSON.stringify({
        port: 0,
        ...(log ? { log_level: "info" } : {}),
        services: { echo: { url: "http://127.0.0.1:9/mcp" } },
      }),
      BENCH_ACCESS_TOKEN_FOR: "echo",
      ...(log ? { BENCH_LOG_DEVNULL: "1" } : {}),
    },
    [],
    cwd,
  );

const sides: Array<{ name: string; server: Server }> = [];
const stopAll = async () => {
  for (const side of sides) await side.server.stop();
};
try {
  sides.push({ name: "bare node:http", server: await startServer("bare") });
  if (process.env.VERIFY_SAT_SILENT !== "0") sides.push({ name: "silent", server: await gateway(false) });
  const dirs = process.argv.slice(2);
  if (dirs.length === 0) sides.push({ name: "logged", server: await gateway(true) });
  for (const dir of dirs) sides.push({ name: `logged ${dir}`, server: await gateway(true, dir) });

  const anyToken = sides.find((s) => s.server.info.accessToken)?.server.info.accessToken;
  const run = (side: (typeof sides)[number], duration: number) =>
    load({
      url: `${side.server.info.url}/verify?service=echo`,
      headers: {
        authorization: `Bearer ${side.server.info.accessToken ?? anyToken}`,
        "x-forwarded-host": "127.0.0.1",
        "x-forwarded-uri": "/echo/mcp",
        "x-forwarded-proto": "http",
        "x-forwarded-method": "POST",
      },
      duration,
      connections: CONNECTIONS,
    });
  const totals = sides.map(() => ({ requests: 0, seconds: 0, main: 0, other: 0, loadgen: 0, machine: 0 }));
  for (const side of sides) await run(side, 1);
  for (let round = 0; round < ROUNDS; round++) {
    const order = sides.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) {
      const side = sides[i] as (typeof sides)[number];
      const sum = totals[i] as (typeof totals)[number];
      const [t0, g0, m0] = [threadCpu(side.server.pid), ownCpu(), machineCpu()];
      const result = await run(side, SLICE_S);
      const [t1, g1, m1] = [threadCpu(side.server.pid), ownCpu(), machineCpu()];
      if (result.errors + result.non2xx > 0) throw new Error(`${side.name}: failed requests`);
      sum.requests += result.total;
      sum.seconds += result.durationS;
      sum.main += t1.main - t0.main;
      sum.other += t1.other - t0.other;
      sum.loadgen += g1 - g0;
      sum.machine += m1 - m0;
    }
  }
  const bareRps = (totals[0]?.requests ?? 0) / (totals[0]?.seconds ?? 1);
  for (const [i, side] of sides.entries()) {
    const t = totals[i] as (typeof totals)[number];
    const us = (ms: number) => ((ms * 1000) / t.requests).toFixed(2);
    const rps = t.requests / t.seconds;
    process.stdout.write(
      `${side.name}: ${rps.toFixed(0)} req/s (${(rps / bareRps).toFixed(2)} of bare); µs per request: ` +
        `server ${us(t.main + t.other)} (main thread ${us(t.main)}, other threads ${us(t.other)}), ` +
        `load generator ${us(t.loadgen)}, machine ${us(t.machine)}\n`,
    );
  }
} finally {
  await stopAll();
}
