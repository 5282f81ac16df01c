/**
 * Operations endpoints: liveness (/healthz), readiness (/readyz: the store answers) and
 * Prometheus metrics (/metrics).
 */
import type { FastifyInstance } from "fastify";
import { collectDefaultMetrics, Registry } from "prom-client";
import type { GatewayConfig } from "../config/schema.js";
import type { Store } from "../store/store.js";
import { RequestMetrics } from "./request-metrics.js";

export interface OpsDeps {
  store: Store;
  config: GatewayConfig;
}

export async function registerOps(app: FastifyInstance, { store }: OpsDeps): Promise<void> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "mcpgw_" });
  const metrics = new RequestMetrics();
  metrics.register(registry);

  // Callback style, not async: no promise per request on the hot path.
  app.addHook("onResponse", (request, reply, done) => {
    // The route pattern, never the raw URL: bounded label cardinality, no secrets in labels.
    metrics.record(
      request.routeOptions.url ?? "unmatched",
      request.method,
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
    done();
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
