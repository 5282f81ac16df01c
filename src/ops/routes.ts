/**
 * Operations endpoints: liveness (/healthz), readiness (/readyz: the store answers) and
 * Prometheus metrics (/metrics).
 */
import type { FastifyInstance } from "fastify";
import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";
import type { GatewayConfig } from "../config/schema.js";
import type { Store } from "../store/store.js";

export interface OpsDeps {
  store: Store;
  config: GatewayConfig;
}

export async function registerOps(app: FastifyInstance, { store }: OpsDeps): Promise<void> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "mcpgw_" });
  const requests = new Counter({
    name: "mcpgw_http_requests_total",
    help: "HTTP requests by route and status",
    labelNames: ["route", "method", "status"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "mcpgw_http_request_duration_seconds",
    help: "Time to response headers, by route",
    labelNames: ["route"] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [registry],
  });

  app.addHook("onResponse", async (request, reply) => {
    // The route pattern, never the raw URL: bounded label cardinality, no secrets in labels.
    const route = request.routeOptions.url ?? "unmatched";
    requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    duration.observe({ route }, reply.elapsedTime / 1000);
  });

  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_request, reply) => {
    try {
      await store.ping();
      return { status: "ready", store: store.kind };
    } catch {
      return reply.code(503).send({ status: "unavailable", store: store.kind });
    }
  });
  app.get("/metrics", async (_request, reply) =>
    reply.header("content-type", registry.contentType).send(await registry.metrics()),
  );
}
