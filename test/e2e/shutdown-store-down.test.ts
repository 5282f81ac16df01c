/**
 * SIGTERM while the store cannot answer: `serve` on Redis, Redis stopped (its port refusing) or
 * stalled (SIGSTOP: connections accepted, nothing answered), then SIGTERM. Nothing can be handed
 * to the store, but the process must still be gone soon after `shutdown_timeout` (issue 12:
 * "exit within shutdown_timeout"; the last-resort exit is 2 s after it), never hang on a store
 * close that cannot complete.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { REDIS_TEST_SECRET } from "../support/full-gateway.js";
import { redisAvailable, startRedis, type TestRedis } from "../support/redis.js";
import { BUILT, type ServeProcess, startServe } from "./serve-process.js";

const canRun = (BUILT && redisAvailable()) || process.env.CI === "true";
const SHUTDOWN_TIMEOUT_S = 3;
/** The last-resort exit comes 2 s after shutdown_timeout; room on top for a busy machine. */
const GONE_WITHIN_MS = (SHUTDOWN_TIMEOUT_S + 2) * 1000 + 8_000;

describe.runIf(canRun)("SIGTERM while the store cannot answer", () => {
  let redis: TestRedis;
  let dir: string;
  let serve: ServeProcess | undefined;
  /** Whether the test stopped Redis (then it is started again for the next). */
  let stopped = false;

  beforeAll(async () => {
    redis = (await startRedis()) as TestRedis;
    dir = mkdtempSync(join(tmpdir(), "mcpgw-shutdown-down-"));
  });
  afterEach(async () => {
    redis.resume();
    serve?.child.kill("SIGKILL");
    serve = undefined;
    if (stopped) await redis.start();
    stopped = false;
  });
  afterAll(async () => {
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    [
      "stopped",
      () => {
        stopped = true;
        return redis.kill("SIGKILL");
      },
    ],
    ["stalled", async () => redis.pause()],
  ])(
    "Redis %s: the process is gone soon after shutdown_timeout",
    async (_how, outage) => {
      serve = await startServe({
        cwd: dir,
        env: {
          REDIS_URL: redis.url,
          MCP_GATEWAY_KEYS__ENCRYPTION_SECRET: REDIS_TEST_SECRET,
          MCP_GATEWAY_DATA_DIR: dir,
          MCP_GATEWAY_SHUTDOWN_TIMEOUT: `${SHUTDOWN_TIMEOUT_S}s`,
          MCP_GATEWAY_DRAIN_DELAY: "0s",
        },
        args: ["--no-builtins"],
        timeoutMs: 60_000,
      });
      expect((await fetch(`${serve.base}/readyz`)).status).toBe(200);
      await outage();
      const child = serve.child;
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      let timer: NodeJS.Timeout | undefined;
      child.kill("SIGTERM");
      const code = await Promise.race([
        exited,
        new Promise<"running">((resolve) => {
          timer = setTimeout(() => resolve("running"), GONE_WITHIN_MS);
        }),
      ]).finally(() => clearTimeout(timer));
      expect(
        code,
        `still running ${GONE_WITHIN_MS} ms after SIGTERM; log: ${serve.stdout().slice(-2000)}`,
      ).not.toBe("running");
      expect(serve.stdout()).toMatch(/"msg":"shutting down: draining"/);
    },
    90_000,
  );
});
