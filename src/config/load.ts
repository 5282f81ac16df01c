/**
 * Config loading, lowest layer first: the built-in services < YAML file < legacy env names (the
 * Python gateway's .env) < MCP_GATEWAY_* env < command-line flags. Validation runs once, on the
 * merged result, so a layer may complete what a lower one started (a policy for a built-in).
 * Nested keys in env use a double underscore: MCP_GATEWAY_TOKENS__ACCESS_TTL=2h.
 *
 * The MCP_GATEWAY_ namespace is the server's: every MCP_GATEWAY_* variable is a config key,
 * except MCP_GATEWAY_CONFIG (the file to read) and the client-side names in CLIENT_SIDE_VARIABLES.
 * Settings of the client CLI (login, token, connect) live outside this namespace; the one that
 * was once inside it is ignored here, so that it keeps working for the client.
 */
import { existsSync, readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { describeIssue, type Origins } from "./errors.js";
import { configSchema, type GatewayConfig } from "./schema.js";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Tree = Record<string, unknown>;

/** MCP_GATEWAY_* names that belong to the client CLI, not to the server's config. */
export const CLIENT_SIDE_VARIABLES: ReadonlySet<string> = new Set(["MCP_GATEWAY_CLIENT_DIR"]);

/** The words the schema reads as a boolean switch. */
const ON = new Set(["true", "1", "yes", "on"]);
const OFF = new Set(["false", "0", "no", "off"]);

/** The Python gateway's service names where ours differ (`MCP_SEQUENTIALTHINKING_ENABLED`). */
const LEGACY_SERVICE_NAMES: Record<string, string> = { sequentialthinking: "sequential-thinking" };

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

/** Sets `path` to `value` and remembers which variable it came from. */
function setFrom(tree: Tree, origins: Origins | undefined, path: string[], value: unknown, variable: string) {
  setPath(tree, path, value);
  origins?.set(path.join("."), `from ${variable}`);
}

/** The Python gateway's variable names, so an existing .env keeps working. */
export function applyLegacyEnv(tree: Tree, env: NodeJS.ProcessEnv, origins?: Origins): void {
  const set = (path: string, variable: string, value = env[variable]) => {
    if (value !== undefined && value !== "") setFrom(tree, origins, path.split("."), value, variable);
  };
  if (env.BASE_DOMAIN) {
    set("base_domain", "BASE_DOMAIN");
    if (getPath(tree, ["public_url"]) === undefined)
      set("public_url", "BASE_DOMAIN", `https://auth.${env.BASE_DOMAIN}`);
  }
  set("idp.github.client_id", "GITHUB_CLIENT_ID");
  set("idp.github.client_secret", "GITHUB_CLIENT_SECRET");
  set("idp.github.allowed_users", "ALLOWED_GITHUB_USERS");
  if (env.GITHUB_CLIENT_ID && env.GITHUB_CLIENT_SECRET && getPath(tree, ["idp", "type"]) === undefined) {
    set("idp.type", "GITHUB_CLIENT_ID", "github");
  }
  if (env.REDIS_URL) {
    set("store.type", "REDIS_URL", "redis");
    set("store.redis.url", "REDIS_URL");
  }
  set("store.redis.password", "REDIS_PASSWORD");
  // The Python gateway signed its tokens with this shared secret; here it seals the signing keys
  // and refresh successors, the same role: one value every instance must share.
  set("keys.encryption_secret", env.GATEWAY_JWT_SECRET ? "GATEWAY_JWT_SECRET" : "JWT_SECRET");
  set("registration.client_ttl", "CLIENT_LIFETIME");
  set("tokens.access_ttl", "ACCESS_TOKEN_LIFETIME");
  set("tokens.refresh_ttl", "REFRESH_TOKEN_LIFETIME");
}

/**
 * `MCP_<SERVICE>_ENABLED`, applied once the services are known (the built-ins and the configured
 * ones): it switches one of those on or off. The Python gateway shipped services this one does
 * not (echo servers, `fetchs`); enabling one of those is a warning, not a stop, so its `.env`
 * starts as it is. An `MCP_GATEWAY_SERVICES__…__ENABLED` set above wins.
 */
export function applyLegacyServiceSwitches(
  tree: Tree,
  env: NodeJS.ProcessEnv,
  known: ReadonlySet<string>,
  origins?: Origins,
): string[] {
  const warnings: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    const m = /^MCP_(.+)_ENABLED$/.exec(name);
    if (!m || name.startsWith("MCP_GATEWAY_") || value === undefined) continue;
    const raw = (m[1] as string).toLowerCase().replace(/_/g, "-");
    const service = LEGACY_SERVICE_NAMES[raw] ?? raw;
    const path = ["services", service, "enabled"];
    if (origins?.get(path.join("."))?.startsWith("from MCP_GATEWAY_")) continue;
    const word = value.trim().toLowerCase();
    // An unknown service switched on is a warning, off is nothing; a value that is no switch at
    // all goes on to validation, which names the variable.
    if (!known.has(service) && (ON.has(word) || OFF.has(word))) {
      if (ON.has(word)) {
        warnings.push(
          `${name}: no service "${service}" ships with this gateway; ignored (add services.${service} with a url or command to serve one)`,
        );
      }
      continue;
    }
    setFrom(tree, origins, path, value, name);
  }
  return warnings;
}

export function applyGatewayEnv(tree: Tree, env: NodeJS.ProcessEnv, origins?: Origins): void {
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith("MCP_GATEWAY_") || value === undefined) continue;
    if (name === "MCP_GATEWAY_CONFIG" || CLIENT_SIDE_VARIABLES.has(name)) continue;
    const path = name
      .slice("MCP_GATEWAY_".length)
      .split("__")
      .map((p) => p.toLowerCase());
    // Service names may contain dashes, which env names cannot: accept underscores for them.
    if (path[0] === "services" && path[1]) path[1] = path[1].replace(/_/g, "-");
    setFrom(tree, origins, path, value, name);
  }
}

export interface LoadOptions {
  /** Explicit --config path; otherwise MCP_GATEWAY_CONFIG, then ./gateway.yaml if present. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * The lowest layer (the services in the box). A function is given the data directory the
   * layers above it name (or the default), since the built-ins keep their files there.
   */
  defaults?: Tree | ((dataDir: string) => Tree);
  /** Layer over everything (CLI flags such as --port). */
  overrides?: Tree;
}

export interface LoadedConfig {
  config: GatewayConfig;
  /** The file read, if any. */
  source?: string;
  /** Settings that were ignored, each one line for stderr (a Python .env's services we do not ship). */
  warnings?: string[];
}

function servicesOf(tree: Tree | undefined): Tree {
  return tree && isTree(tree.services) ? tree.services : {};
}

function isTree(value: unknown): value is Tree {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function deepMerge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isTree(v) && isTree(b) ? deepMerge(b, v) : v;
  }
  return out;
}

/**
 * The default layer under the configured one. A service that the configuration gives a `url` or
 * a `command` of its own is that service, not the built-in one with a few keys changed: the
 * built-in entry is dropped rather than merged (its command would clash with a url).
 */
function mergeOverDefaults(defaults: Tree, configured: Tree): Tree {
  const services = configured.services;
  if (!isTree(defaults.services) || !isTree(services)) return deepMerge(defaults, configured);
  const builtins: Tree = { ...defaults.services };
  for (const [name, service] of Object.entries(services)) {
    if (isTree(service) && ("url" in service || "command" in service)) delete builtins[name];
  }
  return deepMerge({ ...defaults, services: builtins }, configured);
}

/** The data directory the configured layers name, as the schema would read it. */
function dataDirOf(tree: Tree): string {
  const parsed = configSchema.shape.data_dir.safeParse(tree.data_dir);
  return parsed.success ? parsed.data : "./data";
}

function readFile(file: string): Tree {
  let parsed: unknown;
  try {
    // Imported statically so that the admin bundle holds it (scripts/bundle-admin.mjs): as ~80
    // separate files, yaml is a noticeable part of a command's start-up.
    parsed = parseYaml(readFileSync(file, "utf8"));
  } catch (err) {
    throw new ConfigError(`config file ${file}: ${(err as Error).message.split("\n")[0]}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isTree(parsed)) throw new ConfigError(`config file ${file}: expected a mapping at the top level`);
  return parsed;
}

/** Reads, layers and validates the configuration. Throws ConfigError with a one-line message. */
export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const file =
    options.file ?? env.MCP_GATEWAY_CONFIG ?? (existsSync("gateway.yaml") ? "gateway.yaml" : undefined);
  const origins: Origins = new Map();
  let configured: Tree = file ? readFile(file) : {};
  applyLegacyEnv(configured, env, origins);
  applyGatewayEnv(configured, env, origins);
  if (options.overrides) {
    configured = deepMerge(configured, options.overrides);
    for (const key of Object.keys(options.overrides)) origins.set(key, "from the command line");
  }
  const defaults =
    typeof options.defaults === "function" ? options.defaults(dataDirOf(configured)) : options.defaults;
  const known = new Set([...Object.keys(servicesOf(defaults)), ...Object.keys(servicesOf(configured))]);
  const warnings = applyLegacyServiceSwitches(configured, env, known, origins);
  const tree = defaults ? mergeOverDefaults(structuredClone(defaults), configured) : configured;
  return { config: validateConfig(tree, { origins, file }), source: file, warnings };
}

/**
 * Validates a merged config tree. `where` tells the error which variable or file a bad key came
 * from; without it the message names the key alone.
 */
export function validateConfig(
  tree: unknown,
  where: { origins?: Origins; file?: string } = {},
): GatewayConfig {
  // Parsed once per process: zod's compiled fast path (generated with `new Function` on the first
  // parse of each object schema) would cost more to build than it saves on a single parse.
  const result = configSchema.safeParse(tree, { jitless: true });
  if (result.success) {
    const config = result.data;
    return { ...config, public_url: config.public_url ?? `http://localhost:${config.port}` };
  }
  // An unknown key first: a misspelt key often also leaves a required one missing.
  const issues = result.error.issues;
  const issue = issues.find((i) => i.code === "unrecognized_keys") ?? issues[0];
  throw new ConfigError(`config: ${issue ? describeIssue(issue, where) : "invalid"}`);
}
