/**
 * Operations endpoints: liveness (/healthz), readiness (/readyz: the store answers; when it
 * does not, 503 and why, for the load balancer and the operator) and Prometheus metrics
 * (/metrics).
 */
import type { FastifyInstance } from "fastify";
import { collectDefaultMetrics, Registry } from "prom-client";
import type { GatewayConfig } from "../config/schema.js";
import { StoreUnavailableError } from "../store/errors.js";
import type { Store } from "../store/store.js";
import type { RequestMetrics } from "./request-metrics.js";

export interface OpsDeps {
  store: Store;
  config: GatewayConfig;
  /** The request metrics to publish (recorded by RequestLog, for fastify and the shortcuts alike). */
  metrics: RequestMetrics;
}

export async function registerOps(app: FastifyInstance, { store, metrics }: OpsDeps): Promise<void> {
  const registry = new Registry();
  // Event-loop lag sampled every 100 ms, not prom-client's default 10 ms: those 100 wake-ups a
  // second were nearly all of an idle gateway's CPU (28 ms/s measured, 1 ms/s after).
  collectDefaultMetrics({ register: registry, prefix: "mcpgw_", eventLoopMonitoringPrecision: 100 });
  metrics.register(registry);

  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (request, reply) => {
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
  app.get("/metrics", async (_request, reply) =>
    reply.header("content-type", registry.contentType).send(await registry.metrics()),
  );
}
