/**
 * The whole gateway (authorization server + resource side) built by buildGateway, listening on
 * 127.0.0.1 over a real store: a temp SQLite file, or a real Redis when `redisUrl` is given.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildGateway, type Gateway } from "../../src/app.js";
import { validateConfig } from "../../src/config/load.js";
import type { GatewayConfig } from "../../src/config/schema.js";
import { freePort } from "./upstream.js";

/** `keys.encryption_secret` of every harness gateway on Redis (a test secret, not a real one). */
export const REDIS_TEST_SECRET = "full-gateway harness secret for redis";

export interface RunningGateway extends Gateway {
  url: string;
  port: number;
  config: GatewayConfig;
  dataDir: string;
  /** Stops listening; keeps the data unless `wipe` (then the temp dir goes too). */
  close(options?: { wipe?: boolean }): Promise<void>;
}

export interface FullGatewayOptions {
  /** Use this Redis instead of the SQLite file. */
  redisUrl?: string;
  /** Reuse a data dir (restart tests). */
  dataDir?: string;
  /** Reuse a port (restart tests: the issuer must stay the same). */
  port?: number;
  /** Collect the gateway's log lines (JSON) here instead of discarding them. */
  logLines?: string[];
}

export async function startFullGateway(
  tree: Record<string, unknown> = {},
  options: FullGatewayOptions = {},
): Promise<RunningGateway> {
  const port = options.port ?? (await freePort());
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "mcpgw-test-"));
  const store = options.redisUrl
    ? { type: "redis", redis: { url: options.redisUrl, key_prefix: `t${port}:` } }
    : { type: "sqlite" };
  // On Redis the gateway needs the one sealing secret all instances share (an operator sets it;
  // the harness does, unless the test gives `keys`). On SQLite it generates one into the data dir.
  const onRedis = ((tree.store ?? store) as { type?: string }).type === "redis";
  const keys = onRedis && !tree.keys ? { keys: { encryption_secret: REDIS_TEST_SECRET } } : {};
  const config = validateConfig({
    public_url: `http://127.0.0.1:${port}`,
    port,
    data_dir: dataDir,
    log_level: "silent",
    store,
    ...keys,
    ...tree,
  });
  const gateway = await buildGateway(
    config,
    options.logLines
      ? { logStream: { write: (line: string) => options.logLines?.push(line) } }
      : { logger: false },
  );
  await gateway.app.listen({ port, host: "127.0.0.1" });
  return {
    ...gateway,
    url: `http://127.0.0.1:${port}`,
    port,
    config,
    dataDir,
    async close({ wipe = false } = {}) {
      await gateway.app.close();
      if (wipe && !options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
