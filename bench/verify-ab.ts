/**
 * A/B of /verify's CPU per request between two builds of the gateway (each a checkout with its
 * own dist/), run side by side: `node --import tsx bench/verify-ab.ts DIR_A DIR_B`. Starts both
 * gateways (silent, and logging a line per request to /dev/null when VERIFY_AB_LOG=1) and bare
 * node:http, then measures in alternating slices (A B bare, B A bare, …) so the drift of a shared
 * machine falls on all sides alike. Prints µs per request (user + system, /proc) per slice and
 * the medians.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { load } from "./lib.js";
import { cpuMillis } from "./proctree.js";

const dirs = process.argv.slice(2);
const ROUNDS = Number(process.env.VERIFY_AB_ROUNDS ?? 6);
const REQUESTS = Number(process.env.VERIFY_AB_REQUESTS ?? 15_000);
const SERVICE = "echo";

interface Side {
  name: string;
  url: string;
  token?: string;
  pid: number;
  child: ChildProcess;
}

async function start(name: string, cwd: string, script: string, env: Record<string, string>): Promise<Side> {
  const child = spawn(process.execPath, ["--import", "tsx", script], {
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

const gatewayEnv = {
  BENCH_CONFIG: JSON.stringify({
    port: 0,
    ...(process.env.VERIFY_AB_LOG === "1" ? { log_level: "info" } : {}),
    services: { [SERVICE]: { url: "http://127.0.0.1:9/mcp" } },
  }),
  BENCH_ACCESS_TOKEN_FOR: SERVICE,
  ...(process.env.VERIFY_AB_LOG === "1" ? { BENCH_LOG_DEVNULL: "1" } : {}),
};
const sides: Side[] = [];
for (const [i, dir] of dirs.entries())
  sides.push(
    await start(`${String.fromCharCode(65 + i)} ${dir}`, dir, "bench/servers/gateway.ts", gatewayEnv),
  );
sides.push(await start("bare node:http", dirs[0] as string, "bench/servers/bare.ts", {}));

const path = `/verify?service=${SERVICE}`;
async function cpu(side: Side, amount: number): Promise<number> {
  const headers: Record<string, string> = {
    authorization: `Bearer ${side.token ?? sides[0]?.token}`,
    "x-forwarded-host": "127.0.0.1",
    "x-forwarded-uri": `/${SERVICE}/mcp`,
    "x-forwarded-proto": "http",
    "x-forwarded-method": "POST",
  };
  const before = cpuMillis(side.pid);
  const run = await load({ url: `${side.url}${path}`, headers, amount, connections: 4 });
  if (run.errors + run.non2xx > 0) throw new Error(`${side.name}: ${run.errors + run.non2xx} failed`);
  return ((cpuMillis(side.pid) - before) * 1000) / run.total;
}

for (const side of sides) await cpu(side, 3000);
const results = new Map<string, number[]>(sides.map((s) => [s.name, []]));
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? sides : [...sides].reverse();
  for (const side of order) results.get(side.name)?.push(await cpu(side, REQUESTS));
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] as number;
for (const [name, values] of results)
  process.stdout.write(
    `${name}: median ${median(values).toFixed(1)} µs  [${values.map((v) => v.toFixed(1)).join(" ")}]\n`,
  );
for (const side of sides) {
  side.child.kill("SIGTERM");
  await once(side.child, "exit");
}
