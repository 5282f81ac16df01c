/**
 * A gateway that starts while its Redis is stalled (SIGSTOP: the kernel still accepts the
 * connection, nothing answers) waits for it, up to `store.startup_timeout`, logging a warning
 * per failed attempt, and serves once Redis answers: it neither dies on the first timed-out
 * read nor hangs past the deadline. Once through the process (`mcp-gateway serve`, the stall
 * covering the connection and the first reads), once in-process with the store already
 * connected (the stall hits the signing keys' first read, KeyRing.open -> RedisStore.list, as
 * it did in a loaded run of the suite).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildGateway } from "../../src/app.js";
import { validateConfig } from "../../src/config/load.js";
import { RedisStore } from "../../src/store/redis.js";
import { REDIS_TEST_SECRET } from "../support/full-gateway.js";
import { redisAvailable, startRedis, type TestRedis } from "../support/redis.js";
import { freePort } from "../support/upstream.js";
import { BUILT, type ServeProcess, startServe } from "./serve-process.js";

const canRun = (BUILT && redisAvailable()) || process.env.CI === "true";

/** The warning the gateway logs for each start-up attempt the store did not answer. */
const WAITING = /"msg":"store not answering at start-up/;

describe.runIf(canRun)("start-up while the store is stalled", () => {
  let redis: TestRedis;
  let dir: string;
  let serve: ServeProcess | undefined;

  beforeAll(async () => {
    redis = (await startRedis()) as TestRedis;
    dir = mkdtempSync(join(tmpdir(), "mcpgw-store-start-"));
  });
  afterEach(async () => {
    redis.resume();
    await serve?.stop();
    serve = undefined;
  });
  afterAll(async () => {
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function writeConfig(name: string, extra: Record<string, unknown> = {}): string {
    const file = join(dir, name);
    writeFileSync(
      file,
      JSON.stringify({
        data_dir: dir,
        log_level: "info",
        store: { type: "redis", redis: { url: redis.url, key_prefix: `${name}:` }, ...extra },
        keys: { encryption_secret: REDIS_TEST_SECRET },
      }),
    );
    return file;
  }

  it("serve waits for a stalled Redis and serves once it answers", async () => {
    const config = writeConfig("stall.yaml");
    redis.pause();
    let resumed = false;
    serve = await startServe({
      cwd: dir,
      args: ["--config", config, "--no-builtins"],
      timeoutMs: 60_000,
      // Redis answers again once the gateway has said, at least twice, that it is waiting.
      onOutput: (out) => {
        if (!resumed && (out.match(new RegExp(WAITING, "g"))?.length ?? 0) >= 2) {
          resumed = true;
          redis.resume();
        }
      },
    });
    expect(resumed).toBe(true);
    const warnings = serve
      .stdout()
      .split("\n")
      .filter((l) => WAITING.test(l))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(warnings.length).toBeGreaterThanOrEqual(2);
    // Each says what it waited for, which attempt, why, and until when.
    expect(warnings[0]).toMatchObject({ level: 40, attempt: 1 });
    expect(String(warnings[0]?.step)).toMatch(/store/);
    expect(String(warnings[0]?.err)).toMatch(/Redis/);
    expect(warnings[0]?.deadline).toEqual(expect.any(String));

    const jwks = await fetch(`${serve.base}/jwks`);
    expect(jwks.status).toBe(200);
    expect(((await jwks.json()) as { keys: unknown[] }).keys.length).toBeGreaterThan(0);
    expect((await fetch(`${serve.base}/readyz`)).status).toBe(200);
  }, 90_000);

  it("serve gives up with one line once store.startup_timeout has passed", async () => {
    const config = writeConfig("deadline.yaml", { startup_timeout: "3s" });
    redis.pause();
    const err = await startServe({
      cwd: dir,
      args: ["--config", config, "--no-builtins"],
      timeoutMs: 60_000,
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(
      /serve exited \(1\) before its banner: cannot start: .*store\.startup_timeout \(3 s\)/,
    );
    expect(err?.message).toMatch(/Redis/);
  }, 90_000);

  it("buildGateway on a connected store waits out a stall of the first reads", async () => {
    const port = await freePort();
    const config = validateConfig({
      public_url: `http://127.0.0.1:${port}`,
      port,
      data_dir: dir,
      log_level: "info",
      store: { type: "redis", redis: { url: redis.url, key_prefix: "inproc:", command_timeout: 1 } },
      keys: { encryption_secret: REDIS_TEST_SECRET },
      services: {},
    });
    const store = await RedisStore.connect({ ...config.store.redis });
    const lines: string[] = [];
    let resumeNow: () => void = () => {};
    const waited = new Promise<void>((r) => {
      resumeNow = r;
    });
    redis.pause();
    const building = buildGateway(config, {
      store,
      logStream: {
        write(line: string) {
          lines.push(line);
          if (WAITING.test(line)) resumeNow();
        },
      },
    });
    // Fails here on a gateway that gives up on the first timed-out read.
    await Promise.race([waited, building]);
    redis.resume();
    const gateway = await building;
    try {
      const first = JSON.parse(lines.find((l) => WAITING.test(l)) as string) as Record<string, unknown>;
      expect(first.step).toBe("signing keys");
      expect(String(first.err)).toMatch(/timed out/i);
      await gateway.app.listen({ port, host: "127.0.0.1" });
      const jwks = await fetch(`http://127.0.0.1:${port}/jwks`);
      expect(((await jwks.json()) as { keys: unknown[] }).keys.length).toBeGreaterThan(0);
    } finally {
      await gateway.app.close();
      await store.close();
    }
  }, 60_000);
});
