/**
 * Opens the store the config asks for: the embedded SQLite file (default) or Redis.
 */
import { join } from "node:path";
import type { GatewayConfig } from "../config/schema.js";
import type { RedisStoreOptions } from "./redis.js";
import type { Store } from "./store.js";

/** Extra wiring that does not belong in the config file. */
export interface OpenStoreOptions {
  /** Redis connection errors after start-up (the client reconnects meanwhile). */
  onRedisError?: RedisStoreOptions["onError"];
}

/**
 * The store for `config.store.type`. SQLite lives at `store.sqlite_path`, default
 * `{data_dir}/gateway.db`. Redis connects before returning and throws one readable line if it
 * cannot.
 */
export async function openStore(config: GatewayConfig, options: OpenStoreOptions = {}): Promise<Store> {
  if (config.store.type === "redis") {
    // Loaded only when used: ioredis is a large part of start-up time otherwise.
    const { RedisStore } = await import("./redis.js");
    return RedisStore.connect({ ...config.store.redis, onError: options.onRedisError });
  }
  // Loaded only when used too: better-sqlite3's loader is a few ms a Redis command need not pay.
  const { SqliteStore } = await import("./sqlite.js");
  return new SqliteStore(config.store.sqlite_path ?? join(config.data_dir, "gateway.db"));
}
