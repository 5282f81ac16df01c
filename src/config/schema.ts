/**
 * The one configuration schema. Every option has its default here, so this file is also the
 * reference for what can be configured. YAML keys are snake_case; durations are seconds or
 * strings like `30m`/`90d` and come out as whole seconds.
 */
import proxyAddr from "@fastify/proxy-addr";
import { z } from "zod";
import { DEFAULT_ALLOWED_SCHEMES, FORBIDDEN_SCHEMES } from "../net/redirect-schemes.js";
import { parseDuration } from "./duration.js";

const duration = z.union([z.number(), z.string()]).transform((value, ctx) => {
  try {
    return parseDuration(value);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: (err as Error).message });
    return z.NEVER;
  }
});

/** Comma-separated string or list, trimmed, empty entries dropped. */
const stringList = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : v.split(",")).map((s) => s.trim()).filter(Boolean));

const bool = z
  .union([z.boolean(), z.enum(["true", "false", "1", "0", "yes", "no", "on", "off"])])
  .transform((v) => v === true || v === "true" || v === "1" || v === "yes" || v === "on");

/** Names a service cannot have: they are the gateway's own paths, or `auth.{base_domain}`. */
const RESERVED_SERVICE_NAMES = new Set([
  "auth",
  "authorize",
  "callback",
  "consent",
  "device",
  "healthz",
  "introspect",
  "jwks",
  "login",
  "logout",
  "metrics",
  "readyz",
  "register",
  "revoke",
  "token",
  "verify",
]);

const port = z.coerce.number().int().min(0).max(65535);

/**
 * `trust_proxy`, the same from YAML and from the environment (where everything is a string):
 * false | true | a hop count | a list of addresses and CIDRs, each checked here so that a typo
 * stops start-up with the key named instead of trusting something else.
 */
const trustProxy = z
  .union([z.boolean(), z.number().int().min(0), z.string(), z.array(z.string())])
  .transform((value, ctx): boolean | number | string[] => {
    if (typeof value === "boolean" || typeof value === "number") return value;
    if (typeof value === "string") {
      const word = value.trim().toLowerCase();
      if (word === "true" || word === "false") return word === "true";
      if (/^\d+$/.test(word)) return Number(word);
    }
    const list = (Array.isArray(value) ? value : value.split(",")).map((s) => s.trim()).filter(Boolean);
    try {
      proxyAddr.compile(list);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: `${(err as Error).message} (want addresses or CIDRs)` });
      return z.NEVER;
    }
    return list.length > 0 ? list : false;
  });

export type TrustProxy = z.output<typeof trustProxy>;

const url = z.string().url();

/**
 * The issuer is compared character for character by clients (RFC 8414 §3.3, RFC 9207), with
 * what they derive from the URLs they were given: so it is kept in the form URL parsers give
 * it (lower-case scheme and host, no default port, no trailing slash) and must not carry a
 * query, a fragment or credentials. A path is allowed: the gateway at a sub-path of a proxy that
 * strips it (config/public-path.ts; README "At a sub-path of a shared host").
 */
const publicUrl = url.transform((value, ctx) => {
  const parsed = new URL(value);
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    ctx.addIssue({ code: "custom", message: "public_url must be an http(s) URL" });
    return z.NEVER;
  }
  if (parsed.search || parsed.hash || parsed.username || parsed.password || value.includes("#")) {
    ctx.addIssue({ code: "custom", message: "public_url must not have a query, a fragment or credentials" });
    return z.NEVER;
  }
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/, "")}`;
});

/** A private-use redirect scheme: URI scheme syntax (RFC 3986 §3.1), never http(s) or a browser-internal one. */
const redirectScheme = z
  .string()
  .transform((s) => s.trim().toLowerCase().replace(/:$/, ""))
  .refine((s) => /^[a-z][a-z0-9+.-]*$/.test(s), { message: "not a URI scheme name" })
  .refine((s) => s !== "http" && s !== "https", { message: "http and https are not private-use schemes" })
  .refine((s) => !FORBIDDEN_SCHEMES.has(s), { message: "this scheme is never a safe redirect target" });

/** Who may use something: the same shape for the IdP allowlist and per-service policy. */
const accessPolicy = {
  allowed_users: stringList.optional(),
  allowed_orgs: stringList.optional(),
  allowed_teams: stringList.optional(),
  allowed_emails: stringList.optional(),
};

const redisStore = z.strictObject({
  /** redis://[user:password@]host:port[/db], rediss:// (TLS), or unix:///path/to/redis.sock[?db=N]. */
  url: z.string().default("redis://127.0.0.1:6379"),
  /** An ACL user (Redis 6+), with `password`: the way to name one with a unix:// url. */
  username: z.string().optional(),
  password: z.string().optional(),
  db: z.coerce.number().int().min(0).optional(),
  key_prefix: z.string().default("mcpgw:"),
  /** Sentinel: list of host:port and the master group name. */
  sentinels: stringList.optional(),
  sentinel_name: z.string().optional(),
  /** Cluster: list of host:port seed nodes; when set, `url` is ignored. */
  cluster_nodes: stringList.optional(),
  /** With `rediss://`: a PEM file of the CA(s) to trust instead of the system's (a private CA). */
  tls_ca: z.string().optional(),
  /** With `rediss://`: a client certificate and its key (PEM files), for servers that require one. */
  tls_cert: z.string().optional(),
  tls_key: z.string().optional(),
  /** How long a command may wait for Redis's reply before the request answers 503 (0 = no limit). */
  command_timeout: duration.default(2),
  /**
   * Replicas that must hold a write before it is acknowledged (Redis `WAIT` after each write;
   * 0 = off: replication is asynchronous and a failover can lose the last writes). A write not
   * replicated within `wait_timeout` answers 503, so the client retries.
   */
  wait_replicas: z.coerce.number().int().min(0).default(0),
  // Redis's WAIT with a timeout of 0 waits for ever: every write would end at command_timeout.
  wait_timeout: duration
    .refine((seconds) => seconds > 0, { message: "must be at least 1 s (a WAIT of 0 waits for ever)" })
    .default(1),
});

/**
 * One abuse brake: at most `max` counted events per key in each `window` (fixed windows, counted
 * in the store, so every instance shares them). Past it: 429 with Retry-After.
 */
const rateLimit = (max: number, window: number) =>
  z
    .strictObject({
      max: z.coerce.number().int().positive().default(max),
      window: duration.refine((seconds) => seconds > 0, { message: "must be more than 0 s" }).default(window),
    })
    .prefault({});

/**
 * Who may call one tool of a service (`services.NAME.tools.TOOL`), on top of the service's own
 * policy: the same lists (empty = everyone the service admits), and scopes the token must also
 * carry (missing ones are asked for with a step-up challenge).
 */
const toolRule = z
  .strictObject({
    ...accessPolicy,
    scopes: stringList.default([]),
  })
  .prefault({});

/** Tool names as MCP spells them (SEP-986: 1-128 of A-Z a-z 0-9 _ - . /), or "*" for the rest. */
const toolName = z.string().refine((name) => name === "*" || /^[A-Za-z0-9_./-]{1,128}$/.test(name), {
  message: 'a tool name (letters, digits, _ - . /, at most 128) or "*"',
});

const serviceSchema = z
  .strictObject({
    enabled: bool.default(true),
    /** Upstream Streamable HTTP MCP server. */
    url: url.optional(),
    /**
     * With `url`: a file holding the secret the upstream requires as `Authorization: Bearer …`
     * (e.g. `mcp-gateway bridge --auth-token-file`); read at start-up, never from the client.
     */
    upstream_bearer_file: z.string().optional(),
    /** Or a stdio MCP server, bridged in-process. */
    command: z.string().optional(),
    args: z.array(z.string()).default([]),
    env: z.record(z.string(), z.string()).default({}),
    cwd: z.string().optional(),
    session_mode: z.enum(["per-session", "shared"]).default("per-session"),
    max_sessions: z.coerce.number().int().positive().default(100),
    idle_timeout: duration.default(600),
    request_timeout: duration.default(120),
    /** Scopes a token must carry to use this service (advertised in PRM and WWW-Authenticate). */
    scopes: stringList.default([]),
    /** Human name shown on the consent page. */
    title: z.string().optional(),
    ...accessPolicy,
    /**
     * Per-tool policy: tool name (or "*" for every tool not named) -> who may call it. A
     * caller's tools/list shows only the tools they may call; other calls never reach the
     * upstream. Unset: no per-tool checks, and the gateway never reads a request body.
     */
    tools: z.record(toolName, toolRule).optional(),
  })
  .refine((s) => !(s.url && s.command), { message: "give either url or command, not both" })
  .refine((s) => !s.upstream_bearer_file || Boolean(s.url), {
    message: "upstream_bearer_file goes with url (a bridged command is reached over its own socket)",
  })
  .refine((s) => !s.enabled || Boolean(s.url || s.command), { message: "needs url or command" });

export const configSchema = z.strictObject({
  /** The issuer and the base of every URL the gateway advertises. Default: http://localhost:{port}. */
  public_url: publicUrl.optional(),
  host: z.string().default("127.0.0.1"),
  port: port.default(8080),
  /**
   * Which peers' X-Forwarded-For/-Proto/-Host count (README, "Behind a reverse proxy"): false
   * (none), true (every hop), a hop count, or addresses/CIDRs (a list or "a, b").
   */
  trust_proxy: trustProxy.default(false),
  data_dir: z.string().default("./data"),
  /** Host routing: `{service}.{base_domain}` and `auth.{base_domain}`. Path routing always works. */
  base_domain: z.string().optional(),
  log_level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /**
   * One info line per answered request. Off keeps audit events, errors and warnings; worth it
   * for a busy /verify, where the line costs close to half the throughput (bench/RESULTS.md).
   */
  log_requests: bool.default(true),
  /**
   * `auto`: readable lines when stdout is a terminal, JSON lines otherwise (a pipe, a file,
   * journald, a container runtime); `json` or `pretty` to choose.
   */
  log_format: z.enum(["auto", "json", "pretty"]).default("auto"),

  /** Operations endpoints: /healthz, /readyz, /metrics. */
  ops: z
    .strictObject({
      /**
       * Serve the operations endpoints on their own listener, and not on the main one (a port
       * only the monitoring network reaches). 0 = any free port. Unset = on the main listener.
       */
      port: port.optional(),
      /** Address of that listener. Default: the main `host`. */
      host: z.string().optional(),
      /** If set, GET /metrics needs `Authorization: Bearer <this>` (wherever it is served). */
      metrics_token: z.string().min(16, "use at least 16 characters").optional(),
    })
    .prefault({}),

  /**
   * OpenTelemetry tracing: one span per MCP request, exported over OTLP/HTTP (JSON). Off unless
   * `endpoint` is set; off, the SDK is not even loaded.
   */
  otel: z
    .strictObject({
      /** The collector's OTLP/HTTP base URL, e.g. http://127.0.0.1:4318 (spans go to /v1/traces). */
      endpoint: url.optional(),
      /** `service.name` of the spans. */
      service_name: z.string().min(1).default("mcp-gateway"),
      /** Headers sent with every export (a collector's API key, say). */
      headers: z.record(z.string(), z.string()).default({}),
      /** How long finished spans wait to be exported together. */
      export_delay: duration.default(5),
    })
    .prefault({}),

  store: z
    .strictObject({
      type: z.enum(["sqlite", "redis"]).default("sqlite"),
      /** Default: `{data_dir}/gateway.db`. */
      sqlite_path: z.string().optional(),
      redis: redisStore.prefault({}),
      /**
       * How long start-up waits for a store that cannot answer yet (Redis starting, unreachable,
       * stalled), trying again with a warning each time, before it gives up (0 = one attempt).
       */
      startup_timeout: duration.default(30),
    })
    .prefault({}),

  tokens: z
    .strictObject({
      access_ttl: duration.default(3600),
      refresh_ttl: duration.default(30 * 86_400),
      code_ttl: duration.default(600),
      /**
       * Device grant (RFC 8628): how long a device code and its user code live, time enough to
       * walk to another screen, sign in and type eight letters.
       */
      device_code_ttl: duration.refine((s) => s > 0, { message: "must be more than 0 s" }).default(600),
      /** The least time a device waits between polls (RFC 8628 `interval`); slow_down adds 5 s. */
      device_poll_interval: duration.refine((s) => s > 0, { message: "must be more than 0 s" }).default(5),
      /** Reuse of a just-rotated refresh token inside this window is a concurrent refresh, not theft. */
      refresh_reuse_grace: duration.default(10),
      signing_alg: z.enum(["ES256", "RS256", "EdDSA"]).default("ES256"),
      /** How long a revocation may take to reach every token check (cache bound). */
      revocation_cache: duration.default(5),
    })
    .prefault({}),

  keys: z
    .strictObject({
      /**
       * Seals the private signing keys in the store (AES-256-GCM, scrypt-derived key). Set it for
       * any shared store (Redis); once set, the gateway cannot start without it.
       */
      encryption_secret: z.string().min(16, "use at least 16 characters").optional(),
    })
    .prefault({}),

  /**
   * Abuse brakes (STORAGE.md `rate`). The defaults are far above what a team does, and the
   * per-address ones leave room for many people behind one address (a company NAT, a hosted
   * client's shared egress); what stops password guessing is the per-user-name count.
   */
  rate_limits: z
    .strictObject({
      enabled: bool.default(true),
      /** POST /register (anonymous dynamic registration). */
      register: z.strictObject({ per_address: rateLimit(60, 600) }).prefault({}),
      /**
       * POST /token. Per client counts every request naming the client (body or Basic); the
       * per-address limit is lower, so one address cannot spend a client's budget by naming it.
       */
      token: z.strictObject({ per_client: rateLimit(600, 60), per_address: rateLimit(300, 60) }).prefault({}),
      /** GET /authorize (each one keeps a pending request in the store). */
      authorize: z.strictObject({ per_address: rateLimit(120, 60) }).prefault({}),
      /** Failed password logins: per user name whatever the address, and per address. */
      login: z.strictObject({ per_user: rateLimit(10, 900), per_address: rateLimit(100, 900) }).prefault({}),
      /**
       * Wrong user codes typed at /device (RFC 8628 §5.1): per signed-in user, whatever the
       * session or address, and per address.
       */
      device: z.strictObject({ per_user: rateLimit(10, 900), per_address: rateLimit(30, 900) }).prefault({}),
      /** POST /device_authorization (each one keeps a device request in the store). */
      device_authorization: z.strictObject({ per_address: rateLimit(60, 60) }).prefault({}),
    })
    .prefault({}),

  registration: z
    .strictObject({
      enabled: bool.default(true),
      /** If set, POST /register needs `Authorization: Bearer <this>`. */
      initial_access_token: z.string().optional(),
      /** Lifetime of a registered client; 0 = never expires. */
      client_ttl: duration.default(90 * 86_400),
      /**
       * Private-use redirect schemes (RFC 8252 §7.1) native clients may register besides
       * reverse-DNS ones (`com.example.app:`, always allowed): the IDEs' own, which are not
       * reverse-DNS. A list here replaces the default.
       */
      allowed_schemes: z
        .union([z.string(), z.array(z.string())])
        .transform((v) => (Array.isArray(v) ? v : v.split(",")).map((s) => s.trim()).filter(Boolean))
        .pipe(z.array(redirectScheme))
        .default([...DEFAULT_ALLOWED_SCHEMES]),
      /**
       * A registration that has not completed a token request by then is forgotten; its first
       * token gives it the full `client_ttl`. 0 = off (every client lives `client_ttl`).
       */
      unused_ttl: duration.default(86_400),
    })
    .prefault({}),

  /** RFC 7662 introspection: who may learn about tokens issued to other clients. */
  introspection: z
    .strictObject({
      /**
       * Client ids of resource servers that may introspect any token. Every other client learns
       * only about its own tokens (`{"active": false}` for the rest).
       */
      allowed_clients: stringList.default([]),
    })
    .prefault({}),

  /** Client ID Metadata Documents (https URL as client_id). */
  cimd: z
    .strictObject({
      enabled: bool.default(true),
      /** Only for tests on loopback: allow fetching from private/loopback addresses. */
      allow_private_addresses: bool.default(false),
      timeout: duration.default(5),
      max_bytes: z.coerce
        .number()
        .int()
        .positive()
        .default(5 * 1024),
      /** Upper bound on cache lifetime whatever the document's headers say. */
      max_cache: duration.default(86_400),
    })
    .prefault({}),

  session: z
    .strictObject({
      /** How long a browser stays logged in to the gateway ("log in once"). */
      ttl: duration.default(8 * 3600),
    })
    .prefault({}),

  consent: z
    .strictObject({
      /** Remember a user's decision per client (and scope set). */
      remember: bool.default(true),
    })
    .prefault({}),

  idp: z
    .strictObject({
      type: z.enum(["local", "github", "oidc"]).default("local"),
      /**
       * How often, at most, the provider is asked again whether a person may still sign in
       * (GitHub org/team membership, OIDC groups, a local account): at refresh and when a
       * browser session is reused.
       */
      recheck: duration.default(300),
      /**
       * While the provider cannot be reached, how long past a due re-check the last verdict
       * still stands; after that refreshes get 503 (nothing is revoked) until it answers.
       */
      recheck_grace: duration.default(3600),
      github: z
        .strictObject({
          client_id: z.string().optional(),
          client_secret: z.string().optional(),
          /** github.com or https://ghe.example.com */
          web_url: url.default("https://github.com"),
          /** https://api.github.com or https://ghe.example.com/api/v3 */
          api_url: url.default("https://api.github.com"),
          ...accessPolicy,
        })
        .prefault({}),
      oidc: z
        .strictObject({
          issuer: url.optional(),
          client_id: z.string().optional(),
          client_secret: z.string().optional(),
          scopes: stringList.default(["openid", "profile", "email"]),
          ...accessPolicy,
        })
        .prefault({}),
    })
    .prefault({}),

  /**
   * How long SIGTERM waits for in-flight requests before it cuts what is left and exits
   * (README, "Several instances"): open SSE streams are ended at once, cleanly.
   */
  shutdown_timeout: duration.default(10),

  /**
   * How long, once SIGTERM arrives, the instance keeps accepting and serving while /readyz
   * answers 503 "draining", before it stops accepting (README, "Several instances"): set it to
   * what the load balancer's health check needs to take an instance out (interval × failures).
   * Part of shutdown_timeout (at most half of it).
   */
  drain_delay: duration.default(0),

  /**
   * Several instances on one Redis (README, "Several instances"). Set `secret` (or
   * `secret_file`) and `advertise_url` on every instance: a bridged session lives where its child
   * runs, and the other instances forward its requests there over this internal channel.
   */
  cluster: z
    .strictObject({
      /** Shared by every instance; only a holder of it can use the internal channel. */
      secret: z.string().min(32, "use at least 32 characters").optional(),
      /** A file holding the secret (read once at start-up), instead of `secret`. */
      secret_file: z.string().optional(),
      /** How the other instances reach this one's internal listener, e.g. http://10.0.0.5:8081. */
      advertise_url: z.url({ protocol: /^https?$/ }).optional(),
      /** Where the internal listener binds. Default: the host of `advertise_url`. */
      host: z.string().optional(),
      /** Default: the port of `advertise_url`. */
      port: port.optional(),
      /** A session's owner record lives this long unless renewed (it is, while the session lives). */
      session_ttl: duration.default(60),
    })
    .refine((c) => !(c.secret && c.secret_file), { message: "give either secret or secret_file, not both" })
    .refine((c) => !(c.secret || c.secret_file) || Boolean(c.advertise_url), {
      message: "advertise_url is needed with a cluster secret (how the other instances reach this one)",
    })
    .refine((c) => Boolean(c.secret || c.secret_file) || !c.advertise_url, {
      message: "advertise_url needs secret or secret_file",
    })
    .prefault({}),

  gateway: z
    .strictObject({
      /** Accept tokens whose audience is the gateway itself (for clients that send no `resource`). */
      accept_gateway_audience: bool.default(false),
      /** Browser origins allowed to call services (CORS + Origin check). The public URL is always allowed. */
      allowed_origins: stringList.default([]),
      max_body: z.coerce
        .number()
        .int()
        .positive()
        .default(4 * 1024 * 1024),
      upstream_timeout: duration.default(300),
      identity_headers: z
        .strictObject({
          user_id: z.string().default("X-User-Id"),
          user_name: z.string().default("X-User-Name"),
          user_email: z.string().default("X-User-Email"),
          client_id: z.string().default("X-Auth-Client-Id"),
        })
        .prefault({}),
    })
    .prefault({}),

  services: z
    .record(
      z
        .string()
        .regex(/^[a-z0-9][a-z0-9-]*$/, "service names are lowercase a-z, 0-9, -")
        .refine((name) => !RESERVED_SERVICE_NAMES.has(name), {
          message: "this name is taken by a gateway endpoint",
        }),
      serviceSchema,
    )
    .default({}),
});

/** The config as the rest of the program sees it: public_url always set. */
export type GatewayConfig = Omit<z.output<typeof configSchema>, "public_url"> & { public_url: string };
export type ServiceConfig = z.output<typeof serviceSchema>;
export type ToolRule = z.output<typeof toolRule>;
export type AccessPolicy = {
  allowed_users?: string[];
  allowed_orgs?: string[];
  allowed_teams?: string[];
  allowed_emails?: string[];
};
