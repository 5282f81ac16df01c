/**
 * A/B of the proxied tools/call's CPU per call between builds of the gateway (each a checkout
 * with its own dist/), side by side: `node --import tsx bench/proxy-ab.ts DIR_A [DIR_B …]`.
 * Starts one upstream (the SDK server, or with PROXY_AB_UPSTREAM=raw-upstream the raw fast
 * one), a gateway per build protecting it as service `echo`, and the bare pass-through in
 * front of it; then measures in alternating slices (A B pass, pass B A, …) so the drift of a
 * shared machine falls on all sides alike. Prints µs per call (user + system, /proc) per slice
 * and the medians. PROXY_AB_PROFILE=DIR runs the gateways with `--cpu-prof` into DIR.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { load, median } from "./lib.js";
import { cpuMillis } from "./proctree.js";

/** System calls (read, write) and context switches so far of `pid`, from /proc. */
function counters(pid: number): number[] {
  const io = readFileSync(`/proc/${pid}/io`, "utf8");
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (text: string, name: string) => Number(new RegExp(`${name}:\\s*(\\d+)`).exec(text)?.[1]);
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const times = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return [
    Number(times[11]) * 10_000,
    Number(times[12]) * 10_000,
    field(io, "syscr"),
    field(io, "syscw"),
    field(status, "voluntary_ctxt_switches"),
    field(status, "nonvoluntary_ctxt_switches"),
  ];
}
const extra = new Map<string, number[][]>();

const dirs = process.argv.slice(2);
const ROUNDS = Number(process.env.PROXY_AB_ROUNDS ?? 6);
const CALLS = Number(process.env.PROXY_AB_CALLS ?? 4000);
const UPSTREAM = process.env.PROXY_AB_UPSTREAM ?? "upstream";
const PROFILE = process.env.PROXY_AB_PROFILE;
const SERVICE = "echo";

const BODY = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "tools/call",
  params: { name: "echo", arguments: { text: "hello" } },
});

interface Side {
  name: string;
  url: string;
  token?: string;
  pid: number;
  child: ChildProcess;
}

async function start(
  name: string,
  cwd: string,
  script: string,
  env: Record<string, string>,
  nodeArgs: string[] = [],
): Promise<Side> {
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", script], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const info = await new Promise<{ url: string; accessToken?: string }>((resolve) => {
    lines.on("line", (line) => {
      if (line.startsWith("READY ")) resolve(JSON.parse(line.slice(6)));
    });
  });
  return { name, url: info.url, token: info.accessToken, pid: child.pid as number, child };
}

const home = dirs[0] as string;
const upstream = await start("upstream", home, `bench/servers/${UPSTREAM}.ts`, {});
const gatewayEnv = {
  BENCH_CONFIG: JSON.stringify({ port: 0, services: { [SERVICE]: { url: upstream.url } } }),
  BENCH_ACCESS_TOKEN_FOR: SERVICE,
};
const profile = PROFILE
  ? [
      "--cpu-prof",
      `--cpu-prof-dir=${PROFILE}`,
      `--cpu-prof-interval=${process.env.PROXY_AB_INTERVAL ?? 1000}`,
    ]
  : [];
const sides: Side[] = [];
for (const [i, dir] of dirs.entries()) {
  const side = await start(
    `${String.fromCharCode(65 + i)} ${dir}`,
    dir,
    "bench/servers/gateway.ts",
    gatewayEnv,
    profile,
  );
  side.url = `${side.url}/${SERVICE}/mcp`;
  sides.push(side);
}
sides.push(
  await start("bare pass-through", home, "bench/servers/passthrough.ts", { TARGET: upstream.url }, profile),
);

async function cpu(side: Side, amount: number): Promise<number> {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-protocol-version": "2025-06-18",
    ...(side.token ? { authorization: `Bearer ${side.token}` } : {}),
  };
  const before = cpuMillis(side.pid);
  const seen = counters(side.pid);
  const run = await load({ url: side.url, method: "POST", headers, body: BODY, amount, connections: 4 });
  if (run.errors + run.non2xx > 0) throw new Error(`${side.name}: ${run.errors + run.non2xx} failed`);
  const now = counters(side.pid);
  const list = extra.get(side.name) ?? [];
  list.push(now.map((n, i) => (n - (seen[i] as number)) / run.total));
  extra.set(side.name, list);
  return ((cpuMillis(side.pid) - before) * 1000) / run.total;
}

for (const side of sides) await cpu(side, 1000);
const results = new Map<string, number[]>(sides.map((s) => [s.name, []]));
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? sides : [...sides].reverse();
  for (const side of order) results.get(side.name)?.push(await cpu(side, CALLS));
}
for (const [name, values] of results)
  process.stdout.write(
    `${name}: median ${median(values).toFixed(1)} µs  [${values.map((v) => v.toFixed(1)).join(" ")}]\n`,
  );
// Each round's slices ran next to each other: their ratios see the same machine, so their
// median is steadier than the ratio of the medians when other work comes and goes.
const names = [...results.keys()];
const base = results.get(names[0] as string) as number[];
const reference = results.get(names[names.length - 1] as string) as number[];
for (const name of names.slice(1)) {
  const values = results.get(name) as number[];
  const ratios = values.map((v, i) => v / (base[i] as number));
  process.stdout.write(
    `${name} / A, per round: median ${median(ratios).toFixed(3)}  [${ratios.map((r) => r.toFixed(2)).join(" ")}]\n`,
  );
}
for (const name of names.slice(0, -1)) {
  const values = results.get(name) as number[];
  const ratios = values.map((v, i) => v / (reference[i] as number));
  process.stdout.write(
    `${name} / pass-through, per round: median ${median(ratios).toFixed(3)}  [${ratios.map((r) => r.toFixed(2)).join(" ")}]\n`,
  );
}
for (const [name, list] of extra) {
  const last = list.slice(1);
  const mean = (i: number) => last.reduce((n, v) => n + (v[i] as number), 0) / last.length;
  process.stdout.write(
    `${name}: per call user ${mean(0).toFixed(0)} µs sys ${mean(1).toFixed(0)} µs, ` +
      `syscr ${mean(2).toFixed(2)} syscw ${mean(3).toFixed(2)}, ` +
      `voluntary switches ${mean(4).toFixed(2)} involuntary ${mean(5).toFixed(2)}\n`,
  );
}
for (const side of [...sides, upstream]) {
  side.child.kill("SIGTERM");
  await once(side.child, "exit");
}
