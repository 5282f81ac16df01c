/**
 * Two `mcp-gateway serve` processes on one SQLite file, with one issuer (the first's, as behind
 * a load balancer) and the test user (LOGIN) already in the store. `tree` is the config both
 * read (services, keys, tokens…); data_dir is the pair's own temp dir.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalUsers } from "../../src/idp/local.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { type ServeProcess, startServe } from "../e2e/serve-process.js";
import { LOGIN } from "../oauth/helpers.js";

export interface ServePair {
  dataDir: string;
  first: ServeProcess;
  second: ServeProcess;
  /** The issuer both name: `http://localhost:{first's port}`. */
  issuer: string;
  /** Stops both and deletes the data dir. */
  stop(): Promise<void>;
}

export async function startServePairOnSqlite(
  tree: Record<string, unknown>,
  options: { prefix?: string; timeoutMs?: number } = {},
): Promise<ServePair> {
  const dataDir = mkdtempSync(join(tmpdir(), options.prefix ?? "mcpgw-procs-"));
  const seed = new SqliteStore(join(dataDir, "gateway.db"));
  await new LocalUsers(seed).add(LOGIN.username, LOGIN.password, "alice@example.com");
  await seed.close();
  const config = join(dataDir, "gateway.yaml");
  // JSON is YAML.
  writeFileSync(config, JSON.stringify({ log_level: "warn", ...tree, data_dir: dataDir }));
  const args = ["--config", config, "--no-builtins"];
  const first = await startServe({ cwd: dataDir, args, timeoutMs: options.timeoutMs });
  const issuer = `http://localhost:${first.port}`;
  const second = await startServe({
    cwd: dataDir,
    args: [...args, "--public-url", issuer],
    timeoutMs: options.timeoutMs,
  }).catch(async (err) => {
    await first.stop();
    throw err;
  });
  return {
    dataDir,
    first,
    second,
    issuer,
    async stop() {
      await second.stop();
      await first.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
