/**
 * Bench plumbing: servers run as child processes (so load generator and server do not share a
 * core's event loop), autocannon drives them from this process, and every scenario reports
 * against a baseline started in the same run.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import autocannon from "autocannon";

export interface ChildServer<T> {
  info: T;
  pid: number;
  stop(): Promise<void>;
}

/** Starts `bench/servers/{name}.ts`; it prints `READY {json}` once listening. */
export async function startServer<T = { url: string }>(
  name: string,
  env: Record<string, string> = {},
): Promise<ChildServer<T>> {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", `bench/servers/${name}.ts`], {
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

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  total: number;
}

export async function load(options: autocannon.Options): Promise<LoadResult> {
  const result = await autocannon({
    connections: 10,
    ...(options.amount ? {} : { duration: 5 }),
    ...options,
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    total: result.requests.total,
  };
}

export interface Row {
  scenario: string;
  subject: LoadResult;
  baseline: LoadResult;
  baselineName: string;
  target?: string;
}

export function formatRows(rows: Row[]): string {
  const header =
    "| scenario | req/s | p50 ms | p99 ms | errors/non-2xx | baseline | baseline req/s | ratio | target |";
  const sep = "|---|---:|---:|---:|---:|---|---:|---:|---|";
  const body = rows.map((r) => {
    const ratio = r.baseline.rps ? (r.subject.rps / r.baseline.rps).toFixed(2) : "n/a";
    return `| ${r.scenario} | ${r.subject.rps.toFixed(0)} | ${r.subject.p50} | ${r.subject.p99} | ${r.subject.errors}/${r.subject.non2xx} | ${r.baselineName} | ${r.baseline.rps.toFixed(0)} | ${ratio} | ${r.target ?? ""} |`;
  });
  return [header, sep, ...body].join("\n");
}
