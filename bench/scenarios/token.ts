/**
 * Token endpoint throughput: refresh grants per second (rotation, JWT signing, store writes)
 * on SQLite and on Redis, each against a bare node:http server started in the same run.
 */
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startRedis } from "../../test/support/redis.js";
import { load, type Row, startServer } from "../lib.js";

const REQUESTS = Number(process.env.BENCH_REFRESH_COUNT ?? 6000);

async function refreshLoad(url: string, clientId: string, tokens: string[]) {
  let next = 0;
  return load({
    url: `${url}/token`,
    amount: tokens.length,
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    requests: [
      {
        setupRequest: (req) => ({
          ...req,
          body: `grant_type=refresh_token&client_id=${clientId}&refresh_token=${tokens[next++ % tokens.length]}`,
        }),
      },
    ],
  });
}

export async function tokenScenarios(
  baseline: { url: string },
  baselineRps: (amount: number) => Promise<import("../lib.js").LoadResult>,
): Promise<Row[]> {
  const rows: Row[] = [];
  const redis = await startRedis();
  for (const store of ["sqlite", "redis"] as const) {
    if (store === "redis" && !redis) continue;
    const file = join(tmpdir(), `mcpgw-bench-tokens-${store}-${process.pid}.json`);
    const gw = await startServer<{ url: string; clientId: string; tokensFile: string }>("gateway", {
      BENCH_CONFIG: JSON.stringify({
        port: 0,
        store:
          store === "redis"
            ? { type: "redis", redis: { url: redis?.url, key_prefix: "bench:" } }
            : { type: "sqlite" },
        // Redis needs the sealing secret every instance shares (SQLite generates one in data_dir).
        ...(store === "redis" ? { keys: { encryption_secret: "bench secret, not a real one" } } : {}),
        // One client refreshing thousands of times a second from one address is the load, not
        // abuse: the brakes stay on (their counting is part of the cost) with room for it.
        rate_limits: {
          token: { per_client: { max: 1_000_000 }, per_address: { max: 1_000_000 } },
        },
      }),
      BENCH_SEED_REFRESH: String(REQUESTS),
      BENCH_TOKENS_FILE: file,
    });
    try {
      const tokens = JSON.parse(readFileSync(gw.info.tokensFile, "utf8")) as string[];
      const subject = await refreshLoad(gw.info.url, gw.info.clientId, tokens);
      const base = await baselineRps(REQUESTS);
      rows.push({
        scenario: `refresh grant (${store})`,
        subject,
        baseline: base,
        baselineName: "bare node:http POST",
      });
    } finally {
      await gw.stop();
    }
  }
  await redis?.stop();
  void baseline;
  return rows;
}
