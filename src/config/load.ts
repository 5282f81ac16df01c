/**
 * Config loading: YAML file < legacy env names (the Python gateway's .env) < MCP_GATEWAY_* env.
 * Nested keys in env use a double underscore: MCP_GATEWAY_TOKENS__ACCESS_TTL=2h.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { configSchema, type GatewayConfig } from "./schema.js";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Tree = Record<string, unknown>;

function setPath(tree: Tree, path: string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== "object" || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Tree;
  }
  node[path[path.length - 1] as string] = value;
}

function getPath(tree: Tree, path: string[]): unknown {
  let node: unknown = tree;
  for (const key of path) {
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as Tree)[key];
  }
  return node;
}

/** The Python gateway's variable names, so an existing .env keeps working. */
export function applyLegacyEnv(tree: Tree, env: NodeJS.ProcessEnv): void {
  const set = (path: string, value: string | undefined) => {
    if (value !== undefined && value !== "") setPath(tree, path.split("."), value);
  };
  if (env.BASE_DOMAIN) {
    set("base_domain", env.BASE_DOMAIN);
    if (getPath(tree, ["public_url"]) === undefined) set("public_url", `https://auth.${env.BASE_DOMAIN}`);
  }
  set("idp.github.client_id", env.GITHUB_CLIENT_ID);
  set("idp.github.client_secret", env.GITHUB_CLIENT_SECRET);
  set("idp.github.allowed_users", env.ALLOWED_GITHUB_USERS);
  if (env.GITHUB_CLIENT_ID && env.GITHUB_CLIENT_SECRET && getPath(tree, ["idp", "type"]) === undefined) {
    set("idp.type", "github");
  }
  if (env.REDIS_URL) {
    set("store.type", "redis");
    set("store.redis.url", env.REDIS_URL);
  }
  set("store.redis.password", env.REDIS_PASSWORD);
  set("registration.client_ttl", env.CLIENT_LIFETIME);
  set("tokens.access_ttl", env.ACCESS_TOKEN_LIFETIME);
  set("tokens.refresh_ttl", env.REFRESH_TOKEN_LIFETIME);
  for (const [name, value] of Object.entries(env)) {
    const m = /^MCP_(.+)_ENABLED$/.exec(name);
    if (!m || name.startsWith("MCP_GATEWAY_") || value === undefined) continue;
    const service = (m[1] as string).toLowerCase().replace(/_/g, "-");
    setPath(tree, ["services", service, "enabled"], value);
  }
}

export function applyGatewayEnv(tree: Tree, env: NodeJS.ProcessEnv): void {
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith("MCP_GATEWAY_") || value === undefined || name === "MCP_GATEWAY_CONFIG") continue;
    const path = name
      .slice("MCP_GATEWAY_".length)
      .split("__")
      .map((p) => p.toLowerCase());
    // Service names may contain dashes, which env names cannot: accept underscores for them.
    if (path[0] === "services" && path[1]) path[1] = path[1].replace(/_/g, "-");
    setPath(tree, path, value);
  }
}

export interface LoadOptions {
  /** Explicit --config path; otherwise MCP_GATEWAY_CONFIG, then ./gateway.yaml if present. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Extra layer under the file (built-in defaults such as the services in the box). */
  defaults?: Tree;
  /** Layer over everything (CLI flags such as --port). */
  overrides?: Tree;
}

export interface LoadedConfig {
  config: GatewayConfig;
  /** The file read, if any. */
  source?: string;
}

function deepMerge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v && typeof v === "object" && !Array.isArray(v) && b && typeof b === "object" && !Array.isArray(b)
        ? deepMerge(b as Tree, v as Tree)
        : v;
  }
  return out;
}

/** Reads, layers and validates the configuration. Throws ConfigError with a one-line message. */
export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const file =
    options.file ?? env.MCP_GATEWAY_CONFIG ?? (existsSync("gateway.yaml") ? "gateway.yaml" : undefined);
  let tree: Tree = structuredClone(options.defaults ?? {});
  if (file) {
    let parsed: unknown;
    try {
      // yaml is required only when there is a file to read (it is a noticeable part of start-up).
      const { parse } = createRequire(import.meta.url)("yaml") as typeof import("yaml");
      parsed = parse(readFileSync(file, "utf8"));
    } catch (err) {
      throw new ConfigError(`config file ${file}: ${(err as Error).message.split("\n")[0]}`);
    }
    if (parsed !== null && parsed !== undefined) {
      if (typeof parsed !== "object" || Array.isArray(parsed)) {
        throw new ConfigError(`config file ${file}: expected a mapping at the top level`);
      }
      tree = deepMerge(tree, parsed as Tree);
    }
  }
  applyLegacyEnv(tree, env);
  applyGatewayEnv(tree, env);
  if (options.overrides) tree = deepMerge(tree, options.overrides);
  return { config: validateConfig(tree), source: file };
}

export function validateConfig(tree: unknown): GatewayConfig {
  const result = configSchema.safeParse(tree);
  if (result.success) {
    const config = result.data;
    return { ...config, public_url: config.public_url ?? `http://localhost:${config.port}` };
  }
  const issue = result.error.issues[0];
  const key = issue?.path.length ? issue.path.join(".") : "(top level)";
  let message = issue?.message ?? "invalid";
  if (issue?.code === "unrecognized_keys") message = `unknown key ${issue.keys.join(", ")}`;
  // A bad record key (a service name) carries the real reason one level down.
  if (issue?.code === "invalid_key") message = issue.issues[0]?.message ?? message;
  throw new ConfigError(`config: ${key}: ${message}`);
}
