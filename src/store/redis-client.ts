/**
 * Building and connecting the ioredis client for {@link RedisStore}: standalone (`redis://`,
 * `rediss://` = TLS), Sentinel or Cluster, from the config's `store.redis` section.
 *
 * Start-up fails fast with one line when Redis cannot be reached; once connected, the client
 * reconnects with backoff for the life of the process.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import type { ConnectionOptions } from "node:tls";
import { Cluster, Redis, type RedisOptions } from "ioredis";

/** The config's `store.redis` section, plus knobs for tests and embedding. */
export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` for TLS. For Cluster only its scheme counts. */
  url?: string;
  /** Overrides a password in the URL; also used for every Cluster node and the Sentinel-managed master. */
  password?: string;
  /** Overrides a db in the URL (not available on Cluster). */
  db?: number;
  /** Prepended to every key; default `mcpgw:`. */
  key_prefix?: string;
  /** Sentinel `host:port` list; needs `sentinel_name`. */
  sentinels?: string[];
  sentinel_name?: string;
  /** Cluster seed nodes `host:port`. */
  cluster_nodes?: string[];
  /** TLS (`rediss://` only): PEM files of the CA(s) to trust, and of a client certificate and key. */
  tls_ca?: string;
  tls_cert?: string;
  tls_key?: string;
  /** Start-up connect timeout in milliseconds (default 5000). */
  connect_timeout_ms?: number;
  /** Called with connection errors after start-up (ioredis keeps reconnecting meanwhile). */
  onError?: (err: Error) => void;
}

export type RedisClient = Redis | Cluster;

/** Reconnect backoff after start-up: 100 ms, 200 ms, … capped at 2 s, forever. */
const backoff = (attempt: number) => Math.min(attempt * 100, 2_000);

/** A command waits for at most this many reconnect attempts before it fails (no endless hang). */
const MAX_RETRIES_PER_REQUEST = 3;

function hostPort(spec: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(spec.trim());
  if (!m?.[1]) throw new Error(`invalid Redis node address ${JSON.stringify(spec)} (want host:port)`);
  return { host: m[1], port: m[2] ? Number(m[2]) : 6379 };
}

/** Where the data lives, for logs: never contains the password. */
export function describeRedis(opts: RedisStoreOptions): string {
  if (opts.cluster_nodes?.length) return `redis-cluster://${opts.cluster_nodes.join(",")}`;
  if (opts.sentinels?.length)
    return `redis-sentinel://${opts.sentinels.join(",")}/${opts.sentinel_name ?? ""}`;
  const raw = opts.url ?? "redis://127.0.0.1:6379";
  try {
    const u = new URL(raw);
    if (u.password) u.password = "***";
    if (opts.db !== undefined) u.pathname = `/${opts.db}`;
    return u.toString();
  } catch {
    return "redis://(unparseable url)";
  }
}

/**
 * TLS options when the URL says `rediss://`: SNI for a host name, and the configured CA and
 * client certificate files, read once at start-up. A tls_* setting without `rediss://` is a
 * config mistake (it would silently talk in clear), so it stops start-up.
 */
function tlsOptions(opts: RedisStoreOptions, host?: string): ConnectionOptions | undefined {
  const files = { ca: opts.tls_ca, cert: opts.tls_cert, key: opts.tls_key };
  const named = Object.entries(files).filter(([, path]) => path !== undefined);
  if (!opts.url?.startsWith("rediss://")) {
    if (named.length) throw new Error(`store.redis.tls_${named[0]?.[0]} needs a rediss:// url`);
    return undefined;
  }
  if ((files.cert === undefined) !== (files.key === undefined))
    throw new Error("store.redis.tls_cert and store.redis.tls_key go together");
  const tls: ConnectionOptions = {};
  // SNI takes host names only, not IP addresses.
  if (host && !isIP(host)) tls.servername = host;
  for (const [name, path] of named) {
    try {
      tls[name as "ca" | "cert" | "key"] = readFileSync(path as string);
    } catch (err) {
      throw new Error(
        `store.redis.tls_${name}: cannot read ${path} (${(err as NodeJS.ErrnoException).code})`,
      );
    }
  }
  return tls;
}

/** ioredis options for a standalone or Sentinel connection. */
function standaloneOptions(opts: RedisStoreOptions, timeout: number): RedisOptions {
  const base: RedisOptions = {
    lazyConnect: true,
    connectTimeout: timeout,
    maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST,
    enableAutoPipelining: true,
  };
  if (opts.sentinels?.length) {
    if (!opts.sentinel_name)
      throw new Error("store.redis.sentinel_name is required with store.redis.sentinels");
    // Refused rather than ignored: a TLS setting that silently fell back to clear text would be worse.
    if (opts.tls_ca || opts.tls_cert || opts.tls_key)
      throw new Error("store.redis.tls_* is not supported with store.redis.sentinels");
    return {
      ...base,
      sentinels: opts.sentinels.map(hostPort),
      name: opts.sentinel_name,
      password: opts.password,
      db: opts.db ?? 0,
    };
  }
  const raw = opts.url ?? "redis://127.0.0.1:6379";
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`store.redis.url is not a URL: ${describeRedis(opts)}`);
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new Error(`store.redis.url must start with redis:// or rediss://, got ${u.protocol}//`);
  }
  const dbInUrl = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(dbInUrl) || dbInUrl < 0)
    throw new Error(`store.redis.url has an invalid db: ${u.pathname}`);
  return {
    ...base,
    host: u.hostname.replace(/^\[|\]$/g, ""),
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: opts.password ?? (u.password ? decodeURIComponent(u.password) : undefined),
    db: opts.db ?? dbInUrl,
    tls: tlsOptions(opts, u.hostname.replace(/^\[|\]$/g, "")),
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Creates the client and connects it. Throws one readable line if Redis is unreachable, the
 * password is wrong, or the server is older than 6.2 (GETDEL).
 */
export async function connectRedis(opts: RedisStoreOptions): Promise<RedisClient> {
  const timeout = opts.connect_timeout_ms ?? 5_000;
  const where = describeRedis(opts);
  // Until start-up succeeds, a failed attempt is final; afterwards reconnect forever.
  let starting = true;
  const retry = (attempt: number) => (starting ? null : backoff(attempt));
  let client: RedisClient;
  if (opts.cluster_nodes?.length) {
    client = new Cluster(opts.cluster_nodes.map(hostPort), {
      lazyConnect: true,
      clusterRetryStrategy: retry,
      enableAutoPipelining: true,
      maxRedirections: 16,
      redisOptions: {
        connectTimeout: timeout,
        maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST,
        password: opts.password,
        tls: tlsOptions(opts),
      },
    });
  } else {
    const options = standaloneOptions(opts, timeout);
    client = new Redis({
      ...options,
      retryStrategy: retry,
      ...(options.sentinels ? { sentinelRetryStrategy: retry } : {}),
    });
  }
  let lastError: Error | undefined;
  client.on("error", (err: Error) => {
    lastError = err;
    if (!starting) opts.onError?.(err);
  });
  try {
    try {
      await withTimeout(client.connect(), timeout, "connect");
    } catch (err) {
      // connect() rejects with a bare "Connection is closed."; the error event says why.
      throw lastError ?? err;
    }
    await withTimeout(checkServer(client), timeout, "server check");
  } catch (err) {
    client.disconnect();
    throw new Error(`cannot use Redis at ${where}: ${oneLine(err as Error)}`);
  }
  starting = false;
  return client;
}

function oneLine(err: Error): string {
  const text = err.message || (err as { code?: string }).code || String(err);
  return text.split("\n")[0] ?? text;
}

/** PING proves auth worked; the version check rules out servers without GETDEL. */
async function checkServer(client: RedisClient): Promise<void> {
  await client.ping();
  const info = await client.info("server");
  const version = /redis_version:(\d+)\.(\d+)/.exec(info);
  if (version) {
    const [major, minor] = [Number(version[1]), Number(version[2])];
    if (major < 6 || (major === 6 && minor < 2)) {
      throw new Error(`Redis ${major}.${minor} is too old: 6.2 or later is needed (GETDEL)`);
    }
  }
}
