/**
 * Redis on the same machine through its unix socket (`unix:///path/to/redis.sock`), as Debian's
 * redis-server offers it (`unixsocket /run/redis/redis-server.sock`): no TCP port for any local
 * user to reach, and a cheaper round trip than loopback TCP. `serve` from environment only
 * (REDIS_URL, REDIS_PASSWORD) keeps its state in that server and database; a Redis that stops
 * (its socket gone) is a 503 and then served again; a socket that is not there stops start-up
 * with one line naming it; and the URLs it cannot mean stop start-up with one line too.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REDIS_TEST_SECRET } from "../support/full-gateway.js";
import { redisAvailable, startRedis, type TestRedis } from "../support/redis.js";
import { waitFor } from "../support/wait.js";
import { BUILT, type ServeProcess, serveRefused, startServe } from "./serve-process.js";

const canRun = (BUILT && redisAvailable()) || process.env.CI === "true";
const PASSWORD = "unix socket test password";
const DB = 3;
/** `text` as a regular expression that matches it literally (a temp dir's path, say). */
const literally = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** A client registration, as any MCP client sends it first. */
function register(base: string): Promise<Response> {
  return fetch(`${base}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "unix socket test",
      redirect_uris: ["http://127.0.0.1:33418/callback"],
      token_endpoint_auth_method: "none",
    }),
  });
}

describe.runIf(canRun)("Redis through a unix socket", () => {
  let redis: TestRedis;
  let dir: string;
  let serve: ServeProcess;
  let inspect: Redis;

  const env = (url: string, extra: Record<string, string> = {}) => ({
    REDIS_URL: url,
    REDIS_PASSWORD: PASSWORD,
    MCP_GATEWAY_KEYS__ENCRYPTION_SECRET: REDIS_TEST_SECRET,
    MCP_GATEWAY_DATA_DIR: dir,
    ...extra,
  });

  beforeAll(async () => {
    redis = (await startRedis({ password: PASSWORD, unixSocket: true })) as TestRedis;
    dir = mkdtempSync(join(tmpdir(), "mcpgw-redis-unix-"));
    serve = await startServe({
      cwd: dir,
      env: env(`unix://${redis.socket}?db=${DB}`),
      args: ["--no-builtins"],
      timeoutMs: 60_000,
    });
    // Over TCP, to see what the gateway wrote through the socket.
    inspect = new Redis({ host: "127.0.0.1", port: redis.port, password: PASSWORD, lazyConnect: true });
    // It reconnects by itself after the outage below; its refused attempts are not this test's subject.
    inspect.on("error", () => undefined);
    await inspect.connect();
  }, 90_000);
  afterAll(async () => {
    await serve?.stop();
    inspect?.disconnect();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serve from REDIS_URL=unix://…?db=N keeps its state in that Redis and database", async () => {
    // The banner names the socket and the database, never the password.
    expect(serve.stderr()).toMatch(
      new RegExp(`^store: {4}redis unix://${literally(redis.socket as string)}\\?db=${DB}`, "m"),
    );
    expect(serve.stderr()).not.toContain(PASSWORD);
    const res = await register(serve.base);
    expect(res.status).toBe(201);
    const { client_id } = (await res.json()) as { client_id: string };

    await inspect.select(DB);
    const keys = await inspect.keys("mcpgw:*");
    expect(keys.some((k) => k.startsWith("mcpgw:keys:"))).toBe(true);
    expect(keys.some((k) => k.includes(client_id))).toBe(true);
    await inspect.select(0);
    expect(await inspect.keys("mcpgw:*")).toEqual([]);
  });

  it("a Redis that stops (its socket gone) is a 503 in the protocol's shape, then served again", async () => {
    await redis.kill("SIGTERM");
    const during = await register(serve.base);
    expect(during.status).toBe(503);
    expect(during.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(((await during.json()) as { error: string }).error).toBe("temporarily_unavailable");

    await redis.start();
    // The client reconnects on its own back-off (at most 500 ms between attempts).
    const back = await waitFor("a registration through the socket again", async () => {
      const res = await register(serve.base);
      return res.status === 201 ? res : undefined;
    });
    expect(back.status).toBe(201);
  }, 60_000);

  it("a socket that is not there stops start-up with one line naming it", async () => {
    const missing = join(dir, "no-such.sock");
    const refused = serveRefused({
      cwd: dir,
      env: env(`unix://${missing}`, { MCP_GATEWAY_STORE__STARTUP_TIMEOUT: "1s" }),
      args: ["--no-builtins"],
    });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(new RegExp(`cannot use Redis at unix://${literally(missing)}: .*ENOENT`));
    expect(refused.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);

  it.each([
    ["through the socket", () => `unix://${redis.socket}?db=16`],
    ["over TCP", () => `redis://127.0.0.1:${redis.port}/16`],
  ])("a db the server does not have (%s) stops start-up with one line, not db 0", (_how, url) => {
    // redis-server has 16 databases (0-15) unless configured otherwise.
    const refused = serveRefused({ cwd: dir, env: env(url()), args: ["--no-builtins"] });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/cannot use Redis at .*: db 16 does not exist on this server/);
    expect(refused.stderr).not.toMatch(/\n\s+at /);
  });

  it("an ACL user of its own: store.redis.username with the password, through the socket", async () => {
    await inspect.call("ACL", "SETUSER", "gateway", "on", ">gateway-user-pw", "~acl:*", "&*", "+@all");
    const asUser = await startServe({
      cwd: dir,
      env: env(`unix://${redis.socket}`, {
        REDIS_PASSWORD: "gateway-user-pw",
        MCP_GATEWAY_STORE__REDIS__USERNAME: "gateway",
        MCP_GATEWAY_STORE__REDIS__KEY_PREFIX: "acl:",
        MCP_GATEWAY_DATA_DIR: join(dir, "acl"),
      }),
      args: ["--no-builtins"],
      timeoutMs: 60_000,
    });
    try {
      // The user may touch acl:* only: served at all means it is that user, not the default one.
      expect((await register(asUser.base)).status).toBe(201);
      expect((await inspect.keys("acl:keys:*")).length).toBeGreaterThan(0);
    } finally {
      await asUser.stop();
    }
  }, 90_000);

  it.each([
    ["a host", "unix://redis.example/run/redis.sock", /store\.redis\.url: a unix:\/\/ url names no host/],
    ["no path", "unix://", /store\.redis\.url: a unix:\/\/ url needs the socket's absolute path/],
    [
      "a db that is not a number",
      "unix:///run/redis.sock?db=two",
      /store\.redis\.url has an invalid db: two/,
    ],
    [
      "a malformed escape",
      "unix:///run/redis%zz.sock",
      /store\.redis\.url: a malformed %-escape in the socket path \(write % as %25\)/,
    ],
    ["another parameter", "unix:///run/redis.sock?timeout=3", /store\.redis\.url: unknown parameter timeout/],
  ])("a unix:// url with %s stops start-up with one line", (_what, url, message) => {
    const refused = serveRefused({ cwd: dir, env: env(url), args: ["--no-builtins"] });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(message);
    expect(refused.stderr).not.toMatch(/\n\s+at /);
  });

  it("TLS files with a unix:// url stop start-up (they would be silently unused)", () => {
    const refused = serveRefused({
      cwd: dir,
      env: env(`unix://${redis.socket}`, { MCP_GATEWAY_STORE__REDIS__TLS_CA: join(dir, "ca.pem") }),
      args: ["--no-builtins"],
    });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/store\.redis\.tls_ca needs a rediss:\/\/ url/);
    expect(refused.stderr).not.toMatch(/\n\s+at /);
  });
});
