/**
 * `node --import tsx bench/instructions.ts`: instructions the gateway process executes per
 * request, counted by valgrind's callgrind, for the two hot paths: a /verify whose token
 * verdict is cached (`GET /verify?service=echo`), and a proxied MCP `tools/call`. Unlike
 * req/s, an instruction count does not depend on what else the machine is doing, so it
 * compares two builds on a shared, busy machine: build one into dist/, run, build the other,
 * run. Wall-clock ratios stay the job of `npm run bench`.
 *
 * The gateway runs under callgrind with instrumentation off; after a warm-up (so the JIT has
 * settled), instrumentation is switched on for a fixed number of requests, and the count is
 * divided by that number. The figure includes everything the process does meanwhile (GC,
 * timers), as a request's real cost does.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { load, startServer } from "./lib.js";

const SERVICE = "echo";
/** Failed requests per measured scenario, printed with the figures. */
const failures: Record<string, number> = {};
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3000);
const MEASURED = Number(process.env.BENCH_MEASURED ?? 3000);

const BODY = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "tools/call",
  params: { name: "echo", arguments: { text: "hello" } },
});

interface Gateway {
  url: string;
  accessToken: string;
  pid: number;
  stop(): Promise<void>;
}

async function gatewayUnderCallgrind(upstreamUrl: string, outDir: string): Promise<Gateway> {
  const env = {
    ...process.env,
    BENCH_CONFIG: JSON.stringify({ port: 0, services: { [SERVICE]: { url: upstreamUrl } } }),
    BENCH_ACCESS_TOKEN_FOR: SERVICE,
  };
  const child = spawn(
    "valgrind",
    [
      "--tool=callgrind",
      "--instr-atstart=no",
      `--callgrind-out-file=${join(outDir, "callgrind.out.%p")}`,
      process.execPath,
      "--import",
      "tsx",
      "bench/servers/gateway.ts",
    ],
    { env, stdio: ["ignore", "pipe", "ignore"] },
  );
  const lines = createInterface({ input: child.stdout });
  const info = await new Promise<{ url: string; accessToken: string }>((done, fail) => {
    const timer = setTimeout(() => fail(new Error("gateway did not start under valgrind in 300 s")), 300_000);
    child.once("exit", (code) => fail(new Error(`gateway exited with ${code}`)));
    lines.on("line", (line) => {
      if (!line.startsWith("READY ")) return;
      clearTimeout(timer);
      done(JSON.parse(line.slice(6)));
    });
  });
  return {
    ...info,
    pid: child.pid as number,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    },
  };
}

function control(pid: number, ...args: string[]): void {
  const run = spawnSync("callgrind_control", [...args, String(pid)], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`callgrind_control ${args.join(" ")}: ${run.stderr}`);
}

/** Instructions (Ir) in the newest dump under `dir` whose name starts with `prefix`. */
function lastDumpIr(dir: string, prefix: string): number {
  const dumps = readdirSync(dir)
    .filter((f) => f.startsWith(prefix))
    .sort();
  const text = readFileSync(join(dir, dumps[dumps.length - 1] as string), "utf8");
  // A dump has a "summary: 0" header line; the count is on its "totals:" line.
  const m = /^totals: (\d+)/m.exec(text);
  if (!m?.[1]) throw new Error("no totals in the callgrind dump");
  return Number(m[1]);
}

async function measure(
  gateway: Gateway,
  outDir: string,
  name: string,
  send: (amount: number) => Promise<{ errors: number; non2xx: number }>,
): Promise<number> {
  const warm = await send(WARMUP);
  if (warm.errors + warm.non2xx > WARMUP / 100) throw new Error(`${name}: warm-up requests failed`);
  control(gateway.pid, "-z");
  control(gateway.pid, "-i", "on");
  const run = await send(MEASURED);
  control(gateway.pid, "-i", "off");
  // A stray failure (an upstream closing a keep-alive socket the slowed-down gateway was about
  // to reuse) does not change the figure; more than a few would.
  failures[name] = run.errors + run.non2xx;
  if (failures[name] > MEASURED / 100) {
    throw new Error(`${name}: ${run.errors} errors, ${run.non2xx} non-2xx of ${MEASURED} measured requests`);
  }
  control(gateway.pid, "-d", name);
  return lastDumpIr(outDir, `callgrind.out.${gateway.pid}`) / MEASURED;
}

const outDir = mkdtempSync(join(tmpdir(), "mcpgw-callgrind-"));
const upstream = await startServer("upstream");
try {
  const gateway = await gatewayUnderCallgrind(upstream.info.url, outDir);
  try {
    const bearer = { authorization: `Bearer ${gateway.accessToken}` };
    const verify = await measure(gateway, outDir, "verify", (amount) =>
      load({
        url: `${gateway.url}/verify?service=${SERVICE}`,
        headers: { ...bearer, "x-forwarded-method": "POST", "x-forwarded-uri": `/${SERVICE}/mcp` },
        amount,
        connections: 4,
        // Under callgrind a request takes 50-100 times as long, the first ones far longer.
        timeout: 300,
      }),
    );
    const proxy = await measure(gateway, outDir, "proxy", (amount) =>
      load({
        url: `${gateway.url}/${SERVICE}/mcp`,
        method: "POST",
        headers: {
          ...bearer,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-protocol-version": "2025-06-18",
        },
        body: BODY,
        amount,
        connections: 4,
        timeout: 300,
      }),
    );
    process.stdout.write(
      `instructions per request (callgrind Ir, ${MEASURED} measured after ${WARMUP} warm-up, 4 connections)\n` +
        `  GET /verify?service=${SERVICE} (cached verdict): ${Math.round(verify)}\n` +
        `  POST /${SERVICE}/mcp tools/call (proxied):       ${Math.round(proxy)}\n` +
        `  failed requests: ${JSON.stringify(failures)}\n`,
    );
  } finally {
    await gateway.stop();
  }
} finally {
  await upstream.stop();
  if (process.env.BENCH_KEEP !== "1") rmSync(outDir, { recursive: true, force: true });
  else process.stdout.write(`callgrind dumps: ${outDir}\n`);
}
