/**
 * Bench plumbing: servers run as child processes (so load generator and server do not share a
 * core's event loop), autocannon drives them from this process, and every scenario reports
 * against a baseline started in the same run.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import autocannon from "autocannon";
import { Pool } from "undici";

export interface ChildServer<T> {
  info: T;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts `bench/servers/{name}.ts`; it prints `READY {json}` once listening. `nodeArgs` go to
 * node before the script (e.g. `--cpu-prof`).
 */
export async function startServer<T = { url: string }>(
  name: string,
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
  /** The checkout whose bench/servers/ and dist/ run (an A/B starts an older build's). */
  cwd?: string,
): Promise<ChildServer<T>> {
  const args = [...nodeArgs, "--import", "tsx", `bench/servers/${name}.ts`];
  const child: ChildProcess = spawn(process.execPath, args, {
    ...(cwd ? { cwd } : {}),
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const info = await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in 30 s`)), 30_000);
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code}`)));
    lines.on("line", (line) => {
      if (!line.startsWith("READY ")) return;
      clearTimeout(timer);
      resolve(JSON.parse(line.slice(6)) as T);
    });
  });
  return {
    info,
    pid: child.pid as number,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}

/** A bench gateway (bench/servers/gateway.ts): its base URL and, when asked for, a token. */
export type BenchGateway = ChildServer<{ url: string; accessToken: string }>;

/**
 * Starts bench/servers/gateway.ts with the config tree `config` (BENCH_CONFIG). `tokenFor`
 * names the service it mints an access token for (BENCH_ACCESS_TOKEN_FOR; without it
 * `accessToken` is absent); `env` adds the server's other knobs (BENCH_LOG_DEVNULL, …).
 */
export function startGateway(
  config: Record<string, unknown>,
  opts: { tokenFor?: string; env?: Record<string, string>; nodeArgs?: string[] } = {},
): Promise<BenchGateway> {
  return startServer(
    "gateway",
    {
      BENCH_CONFIG: JSON.stringify(config),
      ...(opts.tokenFor ? { BENCH_ACCESS_TOKEN_FOR: opts.tokenFor } : {}),
      ...opts.env,
    },
    opts.nodeArgs,
  );
}

export interface LoadResult {
  rps: number;
  /** Median latency of 2xx answers in ms, from autocannon's per-response timings (sub-ms). */
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  total: number;
  /** Seconds from the start of the run(s) to the last answer. */
  durationS: number;
  /** Every 2xx latency in ms, sorted (what the percentiles come from; merged by `interleave`). */
  latencies: number[];
}

/**
 * Runs autocannon (default: 10 connections for 5 s). Latency percentiles come from every 2xx
 * response's own timing (autocannon's 'response' event, float ms) rather than its histogram,
 * which records whole milliseconds: sub-millisecond differences are what the proxy rows compare.
 */
export async function load(options: autocannon.Options): Promise<LoadResult> {
  const timings: number[] = [];
  const startedAt = performance.now();
  let lastResponseAt = startedAt;
  // Without a callback autocannon returns its event emitter made thenable (the types only say Promise).
  const run = autocannon({
    connections: 10,
    ...(options.amount ? {} : { duration: 5 }),
    ...options,
  }) as unknown as autocannon.Instance & PromiseLike<autocannon.Result>;
  run.on("response", (_client, status, _bytes, ms) => {
    if (status >= 200 && status < 300) timings.push(ms);
    lastResponseAt = performance.now();
  });
  const result = await run;
  const activeS = (lastResponseAt - startedAt) / 1000;
  timings.sort((a, b) => a - b);
  return {
    // Not requests.average (a mean of whole-second samples) nor result.duration (a run by
    // `amount` ends on the next whole-second tick): the time until the last answer.
    rps: activeS > 0 ? result.requests.total / activeS : 0,
    p50: percentile(timings, 0.5),
    p99: percentile(timings, 0.99),
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    total: result.requests.total,
    durationS: activeS,
    latencies: timings,
  };
}

export interface PacedOptions {
  url: string;
  method?: "GET" | "POST";
  headers?: Record<string, string>;
  body?: string;
  /** Requests per second, sent evenly spaced whatever the answers do (open loop). */
  rate: number;
  durationS: number;
}

/**
 * A steady, open-loop load: one request every 1/rate s on a keep-alive pool, each timed on its
 * own. autocannon's `overallRate` is no substitute at a moderate rate: each connection fires
 * its whole per-second quota back to back at the top of the second, so its latencies are those
 * of short bursts at full concurrency.
 */
export async function paced(options: PacedOptions): Promise<LoadResult> {
  const url = new URL(options.url);
  const pool = new Pool(url.origin, { connections: 32, keepAliveTimeout: 10_000 });
  const latencies: number[] = [];
  let errors = 0;
  let non2xx = 0;
  const total = Math.round(options.rate * options.durationS);
  const intervalMs = 1000 / options.rate;
  const inFlight: Promise<void>[] = [];
  const one = async (): Promise<void> => {
    const t0 = performance.now();
    try {
      const res = await pool.request({
        method: options.method ?? "GET",
        path: `${url.pathname}${url.search}`,
        headers: options.headers,
        body: options.body,
      });
      await res.body.dump();
      if (res.statusCode >= 200 && res.statusCode < 300) latencies.push(performance.now() - t0);
      else non2xx++;
    } catch {
      errors++;
    }
  };
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const due = start + i * intervalMs;
    const wait = due - performance.now();
    // Timer jitter (~1 ms) moves when a request leaves, not what it measures: each is timed from its own send.
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    inFlight.push(one());
  }
  await Promise.all(inFlight);
  const activeS = (performance.now() - start) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  return {
    rps: latencies.length / activeS,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    errors,
    non2xx,
    total: latencies.length + non2xx,
    durationS: activeS,
    latencies,
  };
}

/** Sums runs: rps is total requests over total time, percentiles over all latencies. */
export function mergeLoads(runs: LoadResult[]): LoadResult {
  const latencies = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const total = runs.reduce((n, r) => n + r.total, 0);
  const durationS = runs.reduce((n, r) => n + r.durationS, 0);
  return {
    rps: durationS ? total / durationS : 0,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    non2xx: runs.reduce((n, r) => n + r.non2xx, 0),
    total,
    durationS,
    latencies,
  };
}

/**
 * Measures subject and baseline in alternating slices (A B B A A B …) after one warm-up of
 * each, and merges each side's slices. On a shared machine the background load drifts; slices
 * side by side see the same drift, so the ratio stays meaningful where two long runs would not.
 */
export async function interleave(
  subject: (seconds: number) => Promise<LoadResult>,
  baseline: (seconds: number) => Promise<LoadResult>,
  options: { rounds: number; sliceS: number; warmupS: number },
): Promise<{ subject: LoadResult; baseline: LoadResult }> {
  const [a, b] = await interleaveAll([subject, baseline], options);
  return { subject: a as LoadResult, baseline: b as LoadResult };
}

/**
 * `interleave` for any number of sides: one warm-up each, then `rounds` rounds in which every
 * side runs one slice, the order rotating (and reversing every other round) so no side always
 * runs first or last. Returns each side's merged slices, in the order given.
 */
export async function interleaveAll(
  sides: Array<(seconds: number) => Promise<LoadResult>>,
  options: { rounds: number; sliceS: number; warmupS: number },
): Promise<LoadResult[]> {
  for (const side of sides) await side(options.warmupS);
  const slices: LoadResult[][] = sides.map(() => []);
  for (let round = 0; round < options.rounds; round++) {
    const order = sides.map((_, i) => (i + Math.floor(round / 2)) % sides.length);
    if (round % 2 === 1) order.reverse();
    for (const i of order)
      slices[i]?.push(await (sides[i] as (s: number) => Promise<LoadResult>)(options.sliceS));
  }
  return slices.map(mergeLoads);
}

/** Nearest-rank percentile of sorted values, rounded to 0.01 ms; 0 when there are none. */
function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const value = sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
  return Math.round(value * 100) / 100;
}

/**
 * What a row is judged on: the req/s ratio subject/baseline (at full load), or the p50 latency
 * the subject adds over the baseline (at a fixed rate). Reported, never enforced.
 */
export type Goal =
  | { kind: "ratio"; min: number }
  /** An absolute throughput the subject must reach (the baseline is shown for scale). */
  | { kind: "rps"; min: number }
  /** Without `maxMs`, a reference row: the added p50 is shown, not judged. */
  | { kind: "added-p50"; maxMs?: number };

export interface Row {
  scenario: string;
  subject: LoadResult;
  baseline: LoadResult;
  baselineName: string;
  /** Free-text target, for rows without a measurable goal. */
  target?: string;
  goal?: Goal;
}

/** The row's result (ratio, or added p50 in ms) and whether it meets its goal. */
export function judge(row: Row): { result: string; met?: boolean } {
  if (row.goal?.kind === "added-p50") {
    const added = row.subject.p50 - row.baseline.p50;
    const result = `${added >= 0 ? "+" : ""}${added.toFixed(2)} ms p50`;
    return { result, met: row.goal.maxMs === undefined ? undefined : added <= row.goal.maxMs };
  }
  if (row.goal?.kind === "rps") {
    return { result: `${row.subject.rps.toFixed(0)}/s`, met: row.subject.rps >= row.goal.min };
  }
  if (!row.baseline.rps) return { result: "n/a" };
  const ratio = row.subject.rps / row.baseline.rps;
  return {
    result: ratio.toFixed(2),
    met: row.goal?.kind === "ratio" ? ratio >= row.goal.min : undefined,
  };
}

function targetText(row: Row): string {
  if (row.goal?.kind === "ratio") return `ratio >= ${row.goal.min}`;
  if (row.goal?.kind === "rps") return `>= ${row.goal.min.toLocaleString("en")}/s`;
  if (row.goal?.kind === "added-p50" && row.goal.maxMs !== undefined)
    return `added p50 <= ${row.goal.maxMs} ms`;
  return row.target ?? "";
}

export function formatRows(rows: Row[]): string {
  const header =
    "| scenario | req/s | p50 ms | p99 ms | errors/non-2xx | baseline | baseline req/s | baseline p50 ms | baseline p99 ms | result | target | met |";
  const sep = "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---|";
  const body = rows.map((r) => {
    const { result, met } = judge(r);
    const verdict = met === undefined ? "" : met ? "yes" : "**no**";
    return `| ${r.scenario} | ${r.subject.rps.toFixed(0)} | ${r.subject.p50.toFixed(2)} | ${r.subject.p99.toFixed(2)} | ${r.subject.errors}/${r.subject.non2xx} | ${r.baselineName} | ${r.baseline.rps.toFixed(0)} | ${r.baseline.p50.toFixed(2)} | ${r.baseline.p99.toFixed(2)} | ${result} | ${targetText(r)} | ${verdict} |`;
  });
  return [header, sep, ...body].join("\n");
}

/** Memory one session costs on one side: deltas over the whole process tree, divided by the sessions opened. */
export interface SessionMemory {
  rssMiB: number;
  pssMiB: number;
  /** The bridge process's own RSS growth per session (its children excluded). */
  parentMiB: number;
  /** Processes added to the tree by all the sessions together. */
  processes: number;
}

/** A memory comparison: lower is better; met when the subject's RSS per session is below the baseline's. */
export interface MemoryRow {
  scenario: string;
  subjectName: string;
  baselineName: string;
  subject: SessionMemory;
  baseline: SessionMemory;
  /** Not the same mode on both sides: shown for reference, not judged. */
  reference?: boolean;
}

export function formatMemoryRows(rows: MemoryRow[]): string {
  const header =
    "| scenario | side | RSS MiB/session | PSS MiB/session | bridge process MiB/session | processes added | RSS ratio | target | met |";
  const sep = "|---|---|---:|---:|---:|---:|---:|---|---|";
  const line = (r: MemoryRow, side: "subject" | "baseline") => {
    const m = r[side];
    const ratio = r.subject.rssMiB / r.baseline.rssMiB;
    const verdict = r.reference ? "(reference)" : ratio < 1 ? "yes" : "**no**";
    const last = side === "subject" ? `${ratio.toFixed(2)} | ratio < 1 | ${verdict}` : " | | ";
    const name = side === "subject" ? r.subjectName : r.baselineName;
    return `| ${side === "subject" ? r.scenario : ""} | ${name} | ${m.rssMiB.toFixed(2)} | ${m.pssMiB.toFixed(2)} | ${m.parentMiB.toFixed(2)} | ${m.processes} | ${last} |`;
  };
  return [header, sep, ...rows.flatMap((r) => [line(r, "subject"), line(r, "baseline")])].join("\n");
}

/** The middle value (the upper of the two middle ones for an even count). */
export const median = (v: number[]): number =>
  [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] as number;
