/**
 * A real redis-server for tests: a free loopback port, a temp dir, no snapshots. Usage:
 *
 *   const redis = await startRedis();          // undefined => skip (only outside CI)
 *   if (!redis) return;                         // or: describe.skipIf(!redisAvailable())
 *   ... redis.url ...
 *   await redis.stop();
 *
 * `{ persist: true }` turns on the append-only file (fsync always) in the temp dir, so
 * `restart()` brings the same data back on the same port. `{ unixSocket: true }` also listens on
 * a unix socket in the temp dir (`socket`, mode 700). The child is killed on process exit.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type AddressInfo, createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";

export interface RedisOptions {
  /** Sets `requirepass`; the URL then carries it (`redis://:password@…`). */
  password?: string;
  /** Append-only file in the temp dir, so restart() keeps the data. */
  persist?: boolean;
  /** Also a unix socket in the temp dir (TestRedis.socket). */
  unixSocket?: boolean;
  /** TLS only (no plain port): the server's certificate and key, the CA it checks clients against. */
  tls?: {
    cert: string;
    key: string;
    ca: string;
    requireClientCert: boolean;
    clientCert: string;
    clientKey: string;
  };
}

export interface TestRedis {
  /** `redis://[:password@]127.0.0.1:port` (`rediss://` with `tls`) */
  url: string;
  port: number;
  /** With `unixSocket`, the socket it also listens on (`requirepass` applies): `unix://{socket}`. */
  socket?: string;
  /** Stops the server (data kept on disk when persist) and starts it again on the same port. */
  restart(): Promise<void>;
  /** An outage: sends `signal` (SIGTERM: a clean shutdown; SIGKILL: a crash) and waits for the exit. */
  kill(signal: "SIGTERM" | "SIGKILL"): Promise<void>;
  /**
   * Ends an outage: starts the server again on the same port and data; resolves once it answers
   * this test's own PING, with the time (ms since the epoch) that PONG arrived: the moment Redis
   * is observably back.
   */
  start(): Promise<number>;
  /**
   * A stall: SIGSTOP. The kernel still accepts connections (the listen backlog), but nothing is
   * answered until resume() (SIGCONT): a Redis that is overloaded, swapping or partitioned.
   */
  pause(): void;
  resume(): void;
  /** Stops the server and deletes its temp dir. */
  stop(): Promise<void>;
}

const BIN = process.env.REDIS_SERVER_BIN ?? "redis-server";
const START_TIMEOUT_MS = 10_000;

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** True when a redis-server binary can be run. */
export function redisAvailable(): boolean {
  const probe = spawnSync(BIN, ["--version"], { stdio: "ignore" });
  return probe.status === 0;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** One PING (AUTH first if needed), over TLS with `opts.tls`; resolves true on +PONG. */
function pingOnce(port: number, opts: RedisOptions): Promise<boolean> {
  const password = opts.password;
  return new Promise((resolve) => {
    const socket = opts.tls
      ? tlsConnect({
          host: "127.0.0.1",
          port,
          ca: readFileSync(opts.tls.ca),
          cert: readFileSync(opts.tls.clientCert),
          key: readFileSync(opts.tls.clientKey),
        })
      : createConnection({ host: "127.0.0.1", port });
    let reply = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once("error", () => done(false));
    socket.once(opts.tls ? "secureConnect" : "connect", () => {
      socket.write(password ? `AUTH ${JSON.stringify(password)}\r\nPING\r\n` : "PING\r\n");
    });
    socket.on("data", (chunk) => {
      reply += chunk.toString();
      if (reply.includes("+PONG")) done(true);
      else if (reply.startsWith("-")) done(false);
    });
  });
}

function spawnServer(port: number, dir: string, opts: RedisOptions, extra: string[] = []): ChildProcess {
  const ports = opts.tls
    ? [
        ...["--port", "0", "--tls-port", String(port), "--tls-cert-file", opts.tls.cert],
        ...["--tls-key-file", opts.tls.key, "--tls-ca-cert-file", opts.tls.ca],
        ...["--tls-auth-clients", opts.tls.requireClientCert ? "yes" : "no"],
      ]
    : ["--port", String(port)];
  const args = [...ports, "--bind", "127.0.0.1", "--dir", dir, "--save", ""];
  if (opts.unixSocket) args.push("--unixsocket", socketIn(dir), "--unixsocketperm", "700");
  args.push(...(opts.persist ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"]));
  if (opts.password) args.push("--requirepass", opts.password, "--masterauth", opts.password);
  args.push(...extra);
  const child = spawn(BIN, args, { stdio: ["ignore", "ignore", "pipe"] });
  running.add(child);
  child.once("exit", () => running.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const c of running) c.kill("SIGKILL");
    });
  }
  return child;
}

/** The unix socket of the server whose temp dir is `dir`. */
const socketIn = (dir: string) => join(dir, "redis.sock");

/** Resolves with the time the first PONG arrived. */
async function waitUntilReady(child: ChildProcess, port: number, opts: RedisOptions): Promise<number> {
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr += chunk.toString();
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${stderr.trim()}`);
    if (await pingOnce(port, opts)) return Date.now();
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  throw new Error(`redis-server on port ${port} did not answer PING within ${START_TIMEOUT_MS} ms`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill("SIGKILL"), 5_000);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/**
 * Starts a redis-server. Returns undefined when the binary is missing (so the caller can
 * skip), except in CI (`CI=true`), where a missing binary is an error.
 */
export async function startRedis(opts: RedisOptions = {}): Promise<TestRedis | undefined> {
  if (!redisAvailable()) {
    if (process.env.CI === "true") throw new Error(`redis-server not found (${BIN}); it is required in CI`);
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), "mcpgw-redis-"));
  let port = 0;
  let child: ChildProcess | undefined;
  // The free port can be taken between probe and bind; try a few.
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    child = spawnServer(port, dir, opts);
    try {
      await waitUntilReady(child, port, opts);
      break;
    } catch (err) {
      await stopChild(child);
      if (attempt >= 2) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
  const auth = opts.password ? `:${encodeURIComponent(opts.password)}@` : "";
  let current: ChildProcess = child;
  return {
    url: `${opts.tls ? "rediss" : "redis"}://${auth}127.0.0.1:${port}`,
    port,
    ...(opts.unixSocket ? { socket: socketIn(dir) } : {}),
    async restart() {
      await stopChild(current);
      current = spawnServer(port, dir, opts);
      await waitUntilReady(current, port, opts);
    },
    async kill(signal) {
      const child = current;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill(signal);
      await exited;
    },
    async start() {
      current = spawnServer(port, dir, opts);
      return waitUntilReady(current, port, opts);
    },
    pause() {
      current.kill("SIGSTOP");
    },
    resume() {
      current.kill("SIGCONT");
    },
    async stop() {
      // A stopped process ignores SIGTERM until it runs again.
      current.kill("SIGCONT");
      await stopChild(current);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TestRedisCluster {
  /** `127.0.0.1:port` of every master, for `store.redis.cluster_nodes`. */
  nodes: string[];
  stop(): Promise<void>;
}

/** A port whose cluster-bus twin (port + 10000) is also free. */
async function freeClusterPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port >= 55_000) continue;
    const bus = createServer();
    const busFree = await new Promise<boolean>((resolve) => {
      bus.once("error", () => resolve(false));
      bus.listen(port + 10_000, "127.0.0.1", () => bus.close(() => resolve(true)));
    });
    if (busFree) return port;
  }
}

/**
 * A real three-master Redis Cluster (no replicas), made with `redis-cli --cluster create`.
 * Undefined when redis-server or redis-cli is missing outside CI.
 */
export async function startRedisCluster(): Promise<TestRedisCluster | undefined> {
  const cli = spawnSync("redis-cli", ["--version"], { stdio: "ignore" });
  if (!redisAvailable() || cli.status !== 0) {
    if (process.env.CI === "true") throw new Error("redis-server and redis-cli are required in CI");
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), "mcpgw-redis-cluster-"));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const stop = async () => {
    await Promise.all(children.map(stopChild));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freeClusterPort();
      const nodeDir = mkdtempSync(join(dir, "node-"));
      const child = spawnServer(port, nodeDir, {}, [
        "--cluster-enabled",
        "yes",
        "--cluster-node-timeout",
        "2000",
      ]);
      children.push(child);
      ports.push(port);
      await waitUntilReady(child, port, {});
    }
    const nodes = ports.map((p) => `127.0.0.1:${p}`);
    const create = spawnSync("redis-cli", ["--cluster", "create", ...nodes, "--cluster-yes"], {
      encoding: "utf8",
    });
    if (create.status !== 0)
      throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const states = ports.map(
        (p) => spawnSync("redis-cli", ["-p", String(p), "cluster", "info"], { encoding: "utf8" }).stdout,
      );
      if (states.every((info) => info.includes("cluster_state:ok"))) break;
      if (Date.now() > deadline) throw new Error("Redis Cluster did not reach cluster_state:ok");
      await new Promise((r) => setTimeout(r, 100));
    }
    return { nodes, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export interface TestRedisSentinel {
  /** `127.0.0.1:port` of the sentinel, for `store.redis.sentinels`. */
  sentinels: string[];
  /** The master group name, for `store.redis.sentinel_name`. */
  name: string;
  /** The master the sentinel watches (to check what the store wrote). */
  master: TestRedis;
  stop(): Promise<void>;
}

/** A master plus one Sentinel watching it as group `mymaster`. */
export async function startRedisSentinel(): Promise<TestRedisSentinel | undefined> {
  const master = await startRedis();
  if (!master) return undefined;
  const dir = mkdtempSync(join(tmpdir(), "mcpgw-redis-sentinel-"));
  const port = await freePort();
  const conf = join(dir, "sentinel.conf");
  writeFileSync(conf, `port ${port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 ${master.port} 1\n`);
  const child = spawn(BIN, [conf, "--sentinel"], { stdio: ["ignore", "ignore", "pipe"] });
  running.add(child);
  child.once("exit", () => running.delete(child));
  const stop = async () => {
    await stopChild(child);
    await master.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitUntilReady(child, port, {});
    return { sentinels: [`127.0.0.1:${port}`], name: "mymaster", master, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export interface TestRedisFailoverSet {
  /** `127.0.0.1:port` of the three sentinels, for `store.redis.sentinels`. */
  sentinels: string[];
  /** The master group name, for `store.redis.sentinel_name`. */
  name: string;
  /** The port of the primary the set started with. */
  firstPrimaryPort: number;
  /** The ports of the three redis-servers, the first primary first. */
  serverPorts: number[];
  /** The port the sentinels name as primary now (asks one that answers). */
  primaryPort(): Promise<number | undefined>;
  /** kill -9 of the redis-server on `port` (a crash: no shutdown, no last write to replicas). */
  crash(port: number): Promise<void>;
  stop(): Promise<void>;
}

/** One command to a local server or sentinel, as redis-cli prints it; undefined if it does not answer. */
function cliCommand(port: number, args: string[]): string | undefined {
  const res = spawnSync("redis-cli", ["-p", String(port), ...args], { encoding: "utf8", timeout: 2_000 });
  return res.status === 0 ? res.stdout : undefined;
}

/**
 * A Redis set as high availability deploys it: one primary, two replicas, three sentinels
 * (quorum 2) on loopback ports, a primary declared down after 1 s. Two replicas, so that after
 * a failover the new primary still has one and `WAIT 1` can be met. Undefined when
 * redis-server or redis-cli is missing outside CI.
 */
export async function startRedisFailoverSet(): Promise<TestRedisFailoverSet | undefined> {
  const cli = spawnSync("redis-cli", ["--version"], { stdio: "ignore" });
  if (!redisAvailable() || cli.status !== 0) {
    if (process.env.CI === "true") throw new Error("redis-server and redis-cli are required in CI");
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), "mcpgw-redis-ha-"));
  const servers = new Map<number, ChildProcess>();
  const sentinels: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all([...sentinels, ...servers.values()].map(stopChild));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const nodeDir = mkdtempSync(join(dir, "node-"));
      const extra = i === 0 ? [] : ["--replicaof", "127.0.0.1", String(ports[0])];
      const child = spawnServer(port, nodeDir, {}, extra);
      servers.set(port, child);
      ports.push(port);
      await waitUntilReady(child, port, {});
    }
    const primary = ports[0] as number;
    // Both replicas in sync before the sentinels start watching.
    const deadline = Date.now() + START_TIMEOUT_MS;
    const online = () =>
      (cliCommand(primary, ["info", "replication"]) ?? "").match(/state=online/g)?.length ?? 0;
    while (online() < 2) {
      if (Date.now() > deadline) throw new Error("the replicas did not connect to the primary");
      await new Promise((r) => setTimeout(r, 50));
    }
    const sentinelPorts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${i}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          "bind 127.0.0.1",
          `sentinel monitor mymaster 127.0.0.1 ${primary} 2`,
          "sentinel down-after-milliseconds mymaster 1000",
          "sentinel failover-timeout mymaster 10000",
          "sentinel parallel-syncs mymaster 1",
          "",
        ].join("\n"),
      );
      const child = spawn(BIN, [conf, "--sentinel"], { stdio: ["ignore", "ignore", "pipe"] });
      running.add(child);
      child.once("exit", () => running.delete(child));
      sentinels.push(child);
      sentinelPorts.push(port);
      await waitUntilReady(child, port, {});
    }
    // Every sentinel has found the replicas and the other sentinels (else no quorum to fail over).
    while (
      !sentinelPorts.every((p) => {
        const info = cliCommand(p, ["sentinel", "master", "mymaster"]) ?? "";
        return /num-slaves\n2\n/.test(info) && /num-other-sentinels\n2\n/.test(info);
      })
    ) {
      if (Date.now() > deadline + START_TIMEOUT_MS)
        throw new Error("the sentinels did not discover each other");
      await new Promise((r) => setTimeout(r, 100));
    }
    return {
      sentinels: sentinelPorts.map((p) => `127.0.0.1:${p}`),
      name: "mymaster",
      firstPrimaryPort: primary,
      serverPorts: ports,
      async primaryPort() {
        for (const p of sentinelPorts) {
          const out = cliCommand(p, ["sentinel", "get-master-addr-by-name", "mymaster"]);
          const port = out?.trim().split("\n")[1];
          if (port) return Number(port);
        }
        return undefined;
      },
      async crash(port) {
        const child = servers.get(port);
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        child.kill("SIGKILL");
        await exited;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
