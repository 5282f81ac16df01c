/**
 * ForwardAuth throughput: `GET /verify?service=NAME` (the form every shipped proxy config
 * uses) with a valid token and the headers a reverse proxy sets (`X-Forwarded-Host`,
 * `X-Forwarded-Uri`, ...), against the bare node:http server answering the same request with
 * 200, at full load (10 connections), in alternating one-second slices (see `interleave`).
 */
import { interleave, load, type Row } from "../lib.js";
import { cpuMillis } from "../proctree.js";

const ROUNDS = 6;
const SLICE_S = 1;
const WARMUP_S = 1;

export interface VerifyTarget {
  /** Gateway base URL. */
  gatewayUrl: string;
  /** A valid access token for `service`. */
  accessToken: string;
  service: string;
  /** The gateway's pid, for the CPU-per-request figure (none: not measured). */
  pid?: number;
}

/** Requests for the CPU figure: enough that /proc's 10 ms ticks are about 1 % of it. */
const CPU_REQUESTS = 20_000;

/**
 * CPU (user + system) process `pid` spends per /verify, in µs, over CPU_REQUESTS requests at 4
 * connections (below saturation: what one request costs, not what the host lets it have).
 */
async function cpuPerRequest(pid: number, url: string, headers: Record<string, string>): Promise<number> {
  await load({ url, headers, amount: 2000, connections: 4 });
  const before = cpuMillis(pid);
  const run = await load({ url, headers, amount: CPU_REQUESTS, connections: 4 });
  if (run.errors + run.non2xx > 0) throw new Error(`${url}: ${run.errors + run.non2xx} failed requests`);
  return ((cpuMillis(pid) - before) * 1000) / run.total;
}

/**
 * One row: /verify against bare node:http, judged against `min` (issue 8's 0.84 silent; issue
 * 12's 0.85 with the access line). `variant` names a gateway run differently.
 */
export async function verifyScenario(
  target: VerifyTarget,
  bare: { url: string; pid?: number },
  variant?: string,
  min = 0.84,
): Promise<{ row: Row; note?: string }> {
  const headers = {
    authorization: `Bearer ${target.accessToken}`,
    "x-forwarded-host": new URL(target.gatewayUrl).host,
    "x-forwarded-uri": `/${target.service}/mcp`,
    "x-forwarded-proto": "http",
    "x-forwarded-method": "POST",
  };
  const path = `/verify?service=${target.service}`;
  const { subject, baseline } = await interleave(
    (duration) => load({ url: `${target.gatewayUrl}${path}`, headers, duration }),
    (duration) => load({ url: `${bare.url}${path}`, headers, duration }),
    { rounds: ROUNDS, sliceS: SLICE_S, warmupS: WARMUP_S },
  );
  const scenario = `ForwardAuth GET /verify (valid token)${variant ? `, ${variant}` : ""}`;
  const row: Row = {
    scenario,
    subject,
    baseline,
    baselineName: "bare node:http GET",
    goal: { kind: "ratio", min },
  };
  if (target.pid === undefined || bare.pid === undefined) return { row };
  const gatewayCpu = await cpuPerRequest(target.pid, `${target.gatewayUrl}${path}`, headers);
  const bareCpu = await cpuPerRequest(bare.pid, `${bare.url}${path}`, headers);
  const note =
    `${scenario}: CPU per request (4 connections, ${CPU_REQUESTS} requests, /proc): gateway ` +
    `${gatewayCpu.toFixed(1)} µs, bare node:http ${bareCpu.toFixed(1)} µs (${(gatewayCpu / bareCpu).toFixed(2)}×)`;
  return { row, note };
}
