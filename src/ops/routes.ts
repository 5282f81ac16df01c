/**
 * Operations endpoints: liveness (/healthz), readiness (/readyz: the store answers and the
 * instance is not draining; otherwise 503 and why, for the load balancer and the operator —
 * "draining" from the moment SIGTERM arrives, http/drain.ts) and Prometheus metrics
 * (/metrics). They are served on the main listener, or, with `ops.port`, on a listener of
 * their own and not on the main one (so the public side never shows them). With
 * `ops.metrics_token`, /metrics needs that bearer token wherever it is served; the health
 * endpoints stay open for orchestrators' probes.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { collectDefaultMetrics, Registry } from "prom-client";
import type { CacheRegistry } from "../cache/ttl-cache.js";
import type { GatewayConfig } from "../config/schema.js";
import { constantTimeEqual } from "../crypto/secrets.js";
import { StoreUnavailableError } from "../store/errors.js";
import type { Store } from "../store/store.js";
import { bearerToken } from "../tokens/bearer.js";
import { registerCacheMetrics } from "./cache-metrics.js";
import type { RequestMetrics } from "./request-metrics.js";
import { registerShortcutMetrics, type ShortcutCounts } from "./shortcut-metrics.js";

export interface OpsDeps {
  store: Store;
  config: GatewayConfig;
  /** The request metrics to publish (recorded by RequestLog, for fastify and the shortcuts alike). */
  metrics: RequestMetrics;
  /** Whether the main listener's drain has begun (http/drain.ts): /readyz then says "draining". */
  draining?: () => boolean;
  /** The caches whose hits, misses and evictions are published (ops/cache-metrics.ts). */
  caches?: CacheRegistry;
  /** The shortcuts whose answered requests are counted (ops/shortcut-metrics.ts). */
  shortcuts?: ShortcutCounts;
}

/** The operations listener, when `ops.port` gives them one. */
export interface OpsListener {
  /** Where it listens (`http://host:port`), once the app is ready. */
  readonly address: string | undefined;
}

const METRICS_CHALLENGE = 'Bearer realm="metrics"';

export async function registerOps(app: FastifyInstance, deps: OpsDeps): Promise<OpsListener | undefined> {
  const { config } = deps;
  const draining = deps.draining ?? (() => false);
  if (config.ops.port === undefined) {
    opsRoutes(app, deps, draining);
    return undefined;
  }
  // Its own fastify: its own 404s, and no access-log line for every scrape.
  const ops = Fastify({ loggerInstance: app.log.child({ component: "ops" }), disableRequestLogging: true });
  opsRoutes(ops, deps, draining);
  const listener: { address: string | undefined } = { address: undefined };
  const port = config.ops.port;
  // Listening before the main listener does: a port already taken stops start-up, with the main one.
  app.addHook("onReady", async () => {
    listener.address = await ops.listen({ host: config.ops.host ?? config.host, port });
  });
  app.addHook("onClose", async () => {
    await ops.close();
  });
  return listener;
}

function opsRoutes(
  app: FastifyInstance,
  { store, config, metrics, caches, shortcuts }: OpsDeps,
  draining: () => boolean,
): void {
  const registry = new Registry();
  // Event-loop lag sampled every 100 ms, not prom-client's default 10 ms: those 100 wake-ups a
  // second were nearly all of an idle gateway's CPU (28 ms/s measured, 1 ms/s after).
  collectDefaultMetrics({ register: registry, prefix: "mcpgw_", eventLoopMonitoringPrecision: 100 });
  metrics.register(registry);
  if (caches) registerCacheMetrics(registry, caches, store.changes);
  if (shortcuts) registerShortcutMetrics(registry, shortcuts);
  const metricsToken = config.ops.metrics_token;

  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (request, reply) => {
    // Shutting down: out of the load balancer's rotation before the listener closes.
    if (draining())
      return reply.code(503).header("cache-control", "no-store").header("connection", "close").send({
        status: "draining",
        store: store.kind,
        reason: "draining",
      });
    try {
      await store.ping();
      return { status: "ready", store: store.kind };
    } catch (err) {
      // The store's own one-line account (never a password: store errors name hosts and codes);
      // anything else is logged and summarised.
      const outage = err instanceof StoreUnavailableError;
      if (!outage) request.log.error({ err }, "readiness check failed");
      return reply
        .code(503)
        .header("retry-after", String(outage ? err.retryAfterSeconds : 5))
        .header("cache-control", "no-store")
        .send({
          status: "unavailable",
          store: store.kind,
          reason: outage ? err.message : "the store check failed unexpectedly",
        });
    }
  });
  app.get("/metrics", async (request, reply) => {
    if (metricsToken !== undefined && !metricsAllowed(request, metricsToken))
      return refuseMetrics(request, reply);
    return reply.header("content-type", registry.contentType).send(await registry.metrics());
  });
}

function metricsAllowed(request: FastifyRequest, token: string): boolean {
  const presented = bearerToken(request.headers.authorization);
  return typeof presented === "string" && constantTimeEqual(presented, token);
}

/** RFC 6750 §3: no token is a bare challenge, a wrong one is invalid_token. */
function refuseMetrics(request: FastifyRequest, reply: FastifyReply) {
  const sent = request.headers.authorization !== undefined;
  return reply
    .code(401)
    .header("www-authenticate", sent ? `${METRICS_CHALLENGE}, error="invalid_token"` : METRICS_CHALLENGE)
    .send(
      sent
        ? { error: "invalid_token", error_description: "the metrics token is not valid" }
        : { error: "invalid_request", error_description: "/metrics needs the metrics bearer token" },
    );
}
