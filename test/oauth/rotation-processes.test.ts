/**
 * Refresh-token rotation over two gateway processes (`mcp-gateway serve`) on one SQLite file:
 * the rotation is one transaction that takes the file's write lock (BEGIN IMMEDIATE), so the
 * processes see one chain per grant, as two instances on one Redis do (scale-out.test.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, it } from "vitest";
import { LocalUsers } from "../../src/idp/local.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { BUILT, type ServeProcess, startServe } from "../e2e/serve-process.js";
import { LOGIN, SERVICES } from "./helpers.js";
import {
  type Pair,
  replayOnTheOtherGateway,
  SEALING,
  stormServesOneSuccessor,
  twoRotationsOldEndsTheGrant,
} from "./rotation-scenarios.js";

describe.skipIf(!BUILT && process.env.CI !== "true")(
  "two gateway processes on one SQLite file (run `npm run build` first)",
  () => {
    let dataDir: string;
    const processes: ServeProcess[] = [];
    let pair: Pair;

    beforeAll(async () => {
      dataDir = mkdtempSync(join(tmpdir(), "mcpgw-procs-"));
      const seed = new SqliteStore(join(dataDir, "gateway.db"));
      await new LocalUsers(seed).add(LOGIN.username, LOGIN.password, "alice@example.com");
      await seed.close();
      const config = join(dataDir, "gateway.yaml");
      // JSON is YAML.
      writeFileSync(
        config,
        JSON.stringify({ ...SERVICES, ...SEALING, data_dir: dataDir, log_level: "warn" }),
      );
      const args = ["--config", config, "--no-builtins"];
      const first = await startServe({ cwd: dataDir, args });
      // One issuer for both, as behind a load balancer: the first process's.
      const second = await startServe({
        cwd: dataDir,
        args: [...args, "--public-url", `http://localhost:${first.port}`],
      });
      processes.push(first, second);
      pair = [{ url: first.base }, { url: second.base }];
    });
    afterAll(async () => {
      for (const p of processes) await p.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it("answers 20 parallel refreshes of one token over both with one successor; one token works after", async () => {
      await stormServesOneSuccessor(pair);
    });

    it("refuses a token two rotations old and ends the grant in both processes", async () => {
      await twoRotationsOldEndsTheGrant(pair);
    });

    it("answers a replay on the other process with the same successor, not a second chain", async () => {
      await replayOnTheOtherGateway(pair);
    });
  },
);
