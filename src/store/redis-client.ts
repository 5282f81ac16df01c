/**
 * Building and connecting the ioredis client for {@link RedisStore}: standalone (`redis://`,
 * `rediss://` = TLS, `unix://` = a server on this machine through its socket), Sentinel or
 * Cluster, from the config's `store.redis` section.
 *
 * One connection attempt fails fast with one line when Redis cannot be reached (as
 * StoreUnavailableError when waiting may help: refused, timed out, loading; as a plain Error when
 * it cannot: a wrong password, a server too old), and the gateway's start-up tries again until
 * `store.startup_timeout` (store/startup.ts); once connected, the client reconnects for the life
 * of the process. During an outage a command fails within about one
 * reconnect interval instead of waiting for Redis (the request answers 503 and the client
 * retries), and the first command after Redis is back succeeds within one interval (500 ms):
 *
 *   maxRetriesPerRequest 0            a queued or in-flight command fails at the next failed
 *                                     connection attempt (MaxRetriesPerRequestError)
 *   autoResendUnfulfilledCommands off a command whose reply was lost is never sent twice: a
 *                                     rotation or a GETDEL run twice would not be the same
 *   commandTimeout (store.redis.command_timeout, default 2 s)
 *                                     a server that accepts the connection but does not answer
 *                                     (stopped, partitioned, overloaded) fails the command too
 *
 * Whatever the client throws for a server it cannot use becomes StoreUnavailableError.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { isAbsolute } from "node:path";
import type { ConnectionOptions } from "node:tls";
import { Cluster, Redis, type RedisOptions, ReplyError } from "ioredis";
import { StoreUnavailableError } from "./errors.js";

/** The config's `store.redis` section, plus knobs for tests and embedding. */
export interface RedisStoreOptions {
  /**
   * `redis://[user:password@]host:port[/db]`, `rediss://…` for TLS, or `unix:///path/to/redis.sock[?db=N]`.
   * For Cluster only its scheme counts.
   */
  url?: string;
  /** An ACL user (Redis 6+); overrides one in the URL; also used for every Cluster node and the Sentinel-managed master. */
  username?: string;
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
  /** Seconds a command may wait for its reply before it fails (default 2; 0 = no limit). */
  command_timeout?: number;
  /** Replicas that must acknowledge each write (Redis WAIT); 0 or absent = asynchronous replication. */
  wait_replicas?: number;
  /** Seconds a write waits for those replicas before it fails (default 1). */
  wait_timeout?: number;
  /** Called with connection errors after start-up (ioredis keeps reconnecting meanwhile). */
  onError?: (err: Error) => void;
}

export type RedisClient = Redis | Cluster;

/**
 * Reconnect interval after start-up: 50 ms, 100 ms, … capped at 500 ms, forever. The cap is
 * how long after Redis comes back the gateway may still answer 503; a refused connection
 * attempt on a dead server costs next to nothing.
 */
const backoff = (attempt: number) => Math.min(attempt * 50, 500);

/** Commands fail at the first failed reconnect attempt rather than waiting out an outage. */
const MAX_RETRIES_PER_REQUEST = 0;

const DEFAULT_COMMAND_TIMEOUT_S = 2;

/**
 * Error replies that mean "this server cannot serve now" rather than "this command is wrong":
 * still loading its data, busy with a script, a cluster or failover in progress, out of memory,
 * refusing writes after a failed save, or credentials that no longer work.
 */
const UNAVAILABLE_REPLY =
  /^(LOADING|BUSY|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|READONLY|OOM|MISCONF|NOREPLICAS|NOAUTH|WRONGPASS)\b/;

/**
 * What a failed client call means for the gateway: any error that is not a reply from a
 * working server (connection closed or refused, retries exhausted, command timed out, no
 * cluster node reachable) and the replies above are StoreUnavailableError. Other error
 * replies are bugs and stay as they are.
 */
export function unavailableError(err: unknown): unknown {
  if (err instanceof StoreUnavailableError || !(err instanceof Error)) return err;
  if (err instanceof ReplyError && !UNAVAILABLE_REPLY.test(err.message)) return err;
  return new StoreUnavailableError(`the Redis store cannot answer: ${oneLine(err)}`, {
    cause: err,
    retryAfterSeconds: 1,
  });
}

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
    if (u.protocol === "unix:") {
      const db = opts.db ?? u.searchParams.get("db");
      return `unix://${u.pathname}${db === null ? "" : `?db=${db}`}`;
    }
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
/** Per-connection behaviour in an outage (see the file comment), for every kind of deployment. */
function outageOptions(opts: RedisStoreOptions): RedisOptions {
  const seconds = opts.command_timeout ?? DEFAULT_COMMAND_TIMEOUT_S;
  return {
    maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST,
    autoResendUnfulfilledCommands: false,
    ...(seconds > 0 ? { commandTimeout: seconds * 1000 } : {}),
  };
}

function standaloneOptions(opts: RedisStoreOptions, timeout: number): RedisOptions {
  const base: RedisOptions = {
    lazyConnect: true,
    connectTimeout: timeout,
    ...outageOptions(opts),
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
      username: opts.username,
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
  if (u.protocol === "unix:") return { ...base, ...unixSocketOptions(u, opts) };
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new Error(`store.redis.url must start with redis://, rediss:// or unix://, got ${u.protocol}//`);
  }
  const dbInUrl = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(dbInUrl) || dbInUrl < 0)
    throw new Error(`store.redis.url has an invalid db: ${u.pathname}`);
  return {
    ...base,
    host: u.hostname.replace(/^\[|\]$/g, ""),
    port: u.port ? Number(u.port) : 6379,
    username: opts.username ?? (u.username ? decodeURIComponent(u.username) : undefined),
    password: opts.password ?? (u.password ? decodeURIComponent(u.password) : undefined),
    db: opts.db ?? dbInUrl,
    tls: tlsOptions(opts, u.hostname.replace(/^\[|\]$/g, "")),
  };
}

/**
 * `unix:///path/to/redis.sock[?db=N]`: a server on this machine through its socket, which no
 * other machine, and no local user the socket's mode keeps out, can reach; a round trip costs
 * less than over loopback TCP. The password, if any, is store.redis.password (a URL without a
 * host has no place for one). Anything the URL says that would be ignored is refused instead.
 */
function unixSocketOptions(u: URL, opts: RedisStoreOptions): RedisOptions {
  if (u.host) throw new Error("store.redis.url: a unix:// url names no host (unix:///path/to/redis.sock)");
  let path: string;
  try {
    path = decodeURIComponent(u.pathname);
  } catch {
    throw new Error("store.redis.url: a malformed %-escape in the socket path (write % as %25)");
  }
  if (u.hash) throw new Error("store.redis.url: a unix:// url has no #fragment");
  if (!isAbsolute(path) || path === "/")
    throw new Error(
      "store.redis.url: a unix:// url needs the socket's absolute path (unix:///path/to/redis.sock)",
    );
  for (const name of u.searchParams.keys())
    if (name !== "db")
      throw new Error(`store.redis.url: unknown parameter ${name} (a unix:// url takes db only)`);
  const db = u.searchParams.get("db");
  if (db !== null && !/^\d+$/.test(db)) throw new Error(`store.redis.url has an invalid db: ${db}`);
  // TLS files with a socket would go unused: refused as with redis://.
  tlsOptions(opts);
  return {
    path,
    username: opts.username,
    password: opts.password,
    db: opts.db ?? (db === null ? 0 : Number(db)),
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
  if (opts.cluster_nodes?.length && opts.wait_replicas) {
    // WAIT counts the replicas of the node it is sent to, and a keyless command goes to any node.
    throw new Error("store.redis.wait_replicas is not supported with store.redis.cluster_nodes");
  }
  if (opts.cluster_nodes?.length) {
    client = new Cluster(opts.cluster_nodes.map(hostPort), {
      lazyConnect: true,
      clusterRetryStrategy: retry,
      enableAutoPipelining: true,
      maxRedirections: 16,
      redisOptions: {
        connectTimeout: timeout,
        ...outageOptions(opts),
        username: opts.username,
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
    const message = `cannot use Redis at ${where}: ${oneLine(err as Error)}`;
    if (mayAnswerLater(err)) throw new StoreUnavailableError(message, { cause: err, retryAfterSeconds: 1 });
    throw new Error(message);
  }
  starting = false;
  return client;
}

/** A server that cannot serve this gateway however long it waits (checkServer). */
class UnsuitableServerError extends Error {}

/**
 * Whether a failed connection attempt may succeed if tried again: the server is unreachable,
 * slow or busy, not refusing these credentials or too old.
 */
function mayAnswerLater(err: unknown): boolean {
  if (err instanceof UnsuitableServerError) return false;
  if (err instanceof ReplyError && /^(NOAUTH|WRONGPASS)\b/.test((err as Error).message)) return false;
  return unavailableError(err) instanceof StoreUnavailableError;
}

function oneLine(err: Error): string {
  const text = err.message || (err as { code?: string }).code || String(err);
  return text.split("\n")[0] ?? text;
}

/**
 * PING proves auth worked; the version check rules out servers without GETDEL; a SELECT of the
 * configured db proves it exists (ioredis's own SELECT on connecting only emits an error, and
 * every command would then go to db 0).
 */
async function checkServer(client: RedisClient): Promise<void> {
  await client.ping();
  const db = client instanceof Redis ? (client.options.db ?? 0) : 0;
  if (db !== 0) {
    try {
      await client.select(db);
    } catch (err) {
      if (err instanceof ReplyError && /out of range/i.test((err as Error).message))
        throw new UnsuitableServerError(`db ${db} does not exist on this server (its \`databases\` setting)`);
      throw err;
    }
  }
  const info = await client.info("server");
  const version = /redis_version:(\d+)\.(\d+)/.exec(info);
  if (version) {
    const [major, minor] = [Number(version[1]), Number(version[2])];
    if (major < 6 || (major === 6 && minor < 2)) {
      throw new UnsuitableServerError(`Redis ${major}.${minor} is too old: 6.2 or later is needed (GETDEL)`);
    }
  }
}
