/**
 * Several gateway instances as processes (the compiled CLI, `serve`), one real redis-server,
 * and nginx or Caddy in front of them with the shipped round-robin files
 * (deploy/nginx/gateway-cluster.conf, deploy/caddy/Caddyfile.cluster). Every instance has the
 * same public_url (the proxy's), store, sealing secret and cluster secret, and its own
 * internal listener. Services: `counter` (a bridged stdio server, one child per session),
 * `pooled` (the same server in shared mode: one child per instance) and `echo` (a remote
 * Streamable HTTP server that shows the headers it got).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { BIN, cleanEnv, type ServeProcess, startServe } from "../e2e/serve-process.js";
import { deployFile, type RunningProxy, startCaddy, startNginxWith } from "../support/proxies.js";
import { startRedis, type TestRedis } from "../support/redis.js";
import { freePort, startUpstream, type TestUpstream } from "../support/upstream.js";
import { type RelayTap, startRelayTap } from "./relay-tap.js";

export const LOGIN = { username: "alice", password: "correct horse battery" };
export const CLUSTER_SECRET = "cluster-secret-0123456789abcdef0123456789abcdef";
const COUNTER = resolve(import.meta.dirname, "counter-server.mjs");

export interface Instance {
  name: string;
  port: number;
  /** Its internal listener, as the others reach it. */
  advertiseUrl: string;
  /** Where its internal listener listens (with `tap`, not where the others reach it). */
  internalPort: number;
  /** With `tap`: the recording forwarder the others reach it through. */
  tap?: RelayTap;
  config: string;
  process: ServeProcess;
}

export interface TestCluster {
  /** The load balancer's URL: the public_url of every instance. */
  base: string;
  instances: Instance[];
  redis: TestRedis;
  upstream: TestUpstream;
  proxy: RunningProxy;
  dir: string;
  /** Starts instance `i` again on its own ports (after a kill or a stop). */
  restart(i: number): Promise<void>;
  /** Log lines (JSON) of instance `i` for requests to `path`. */
  requestsSeen(i: number, path: string): number;
  stop(): Promise<void>;
}

function configFor(opts: {
  base: string;
  port: number;
  clusterPort: number;
  /** Where the internal listener binds, when not at the advertised port (a tap in between). */
  internalPort?: number;
  dir: string;
  name: string;
  redisUrl: string;
  upstreamUrl: string;
  extra?: string[];
  shutdownTimeoutInFile: boolean;
}): string {
  const counter = (mode: string) => [
    `    command: ${process.execPath}`,
    `    args: [${JSON.stringify(COUNTER)}]`,
    `    env: { INSTANCE: ${opts.name} }`,
    `    session_mode: ${mode}`,
    "    max_sessions: 200",
  ];
  return [
    `public_url: ${opts.base}`,
    "host: 127.0.0.1",
    `port: ${opts.port}`,
    "trust_proxy: 127.0.0.1",
    `data_dir: ${join(opts.dir, `data-${opts.name}`)}`,
    "log_level: info",
    ...(opts.shutdownTimeoutInFile ? ["shutdown_timeout: 8"] : []),
    ...(opts.extra ?? []),
    "store:",
    "  type: redis",
    "  redis:",
    `    url: ${opts.redisUrl}`,
    "keys:",
    "  encryption_secret: sealing-secret-for-the-cluster-test",
    "cluster:",
    `  secret: ${CLUSTER_SECRET}`,
    `  advertise_url: http://127.0.0.1:${opts.clusterPort}`,
    ...(opts.internalPort ? [`  port: ${opts.internalPort}`] : []),
    "  session_ttl: 30",
    "services:",
    "  counter:",
    ...counter("per-session"),
    "  pooled:",
    ...counter("shared"),
    "  echo:",
    `    url: ${opts.upstreamUrl}`,
    "",
  ].join("\n");
}

export async function startCluster(opts: {
  instances: number;
  proxy: "nginx" | "caddy";
  /** Put a recording forwarder (relay-tap.ts) in front of every internal listener. */
  tap?: boolean;
  /** More top-level config lines for every instance. */
  extraConfig?: string[];
  /** Environment of every instance's process (MCP_GATEWAY_* config, say). */
  env?: Record<string, string>;
  /** false: the files leave shutdown_timeout out (set it through `env`, say). */
  shutdownTimeoutInFile?: boolean;
}): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), "mcpgw-cluster-"));
  const redis = await startRedis();
  if (!redis) throw new Error("redis-server is needed");
  const upstream = await startUpstream();
  const proxyPort = await freePort();
  const base = `http://127.0.0.1:${proxyPort}`;
  const instances: Instance[] = [];
  for (let i = 0; i < opts.instances; i++) {
    const name = String.fromCharCode(97 + i);
    const port = await freePort();
    const clusterPort = await freePort();
    const internalPort = opts.tap ? await freePort() : clusterPort;
    const config = join(dir, `gateway-${name}.yaml`);
    writeFileSync(
      config,
      configFor({
        base,
        port,
        clusterPort,
        internalPort: opts.tap ? internalPort : undefined,
        dir,
        name,
        redisUrl: redis.url,
        upstreamUrl: upstream.url,
        extra: opts.extraConfig,
        shutdownTimeoutInFile: opts.shutdownTimeoutInFile ?? true,
      }),
    );
    instances.push({
      name,
      port,
      advertiseUrl: `http://127.0.0.1:${clusterPort}`,
      internalPort,
      tap: opts.tap ? await startRelayTap(clusterPort, internalPort) : undefined,
      config,
      process: undefined as never,
    });
  }
  const first = instances[0] as Instance;
  // One user in the one store: every instance knows her.
  const added = spawnSync(
    process.execPath,
    [BIN, "admin", "users", "add", LOGIN.username, "--password-stdin", "--config", first.config],
    { cwd: dir, env: cleanEnv(), input: `${LOGIN.password}\n`, encoding: "utf8" },
  );
  if (added.status !== 0) throw new Error(`admin users add failed: ${added.stderr}`);
  const start = async (instance: Instance) => {
    instance.process = await startServe({
      cwd: dir,
      port: instance.port,
      env: opts.env,
      args: ["--config", instance.config, "--no-builtins"],
      timeoutMs: 60_000,
    });
  };
  await Promise.all(instances.map(start));
  const proxy =
    opts.proxy === "nginx"
      ? await startNginxWith(deployFile("nginx/gateway-cluster.conf"), {
          PORT: proxyPort,
          GATEWAY_SERVERS: instances.map((i) => `server 127.0.0.1:${i.port};`).join(" "),
        })
      : await startCaddy(
          { PORT: proxyPort, GATEWAYS: instances.map((i) => `127.0.0.1:${i.port}`).join(" ") } as never,
          "caddy/Caddyfile.cluster",
        );
  return {
    base,
    instances,
    redis,
    upstream,
    proxy,
    dir,
    restart: (i) => start(instances[i] as Instance),
    requestsSeen(i, path) {
      const out = (instances[i] as Instance).process.stdout();
      return out.split("\n").filter((l) => l.includes(`"url":"${path}`) || l.includes(`"path":"${path}`))
        .length;
    },
    async stop() {
      await proxy.close();
      await Promise.all(instances.map((i) => i.process?.stop()));
      await Promise.all(instances.map((i) => i.tap?.close()));
      await upstream.close();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
