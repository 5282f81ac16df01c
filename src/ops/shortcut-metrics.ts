/**
 * How many requests each shortcut answered ahead of fastify (src/http/server.ts), on /metrics,
 * read from the shortcuts' plain counters at scrape time (as request-metrics.ts does), so the
 * hot path pays one increment per answered request:
 *
 *   mcpgw_shortcut_requests_total{shortcut}   requests a shortcut answered: verify, mcp
 *
 * Both lanes log and count a request alike (mcpgw_http_requests_total has it either way); this
 * says which lane took it, e.g. that a proxy's /verify calls are served from cached verdicts.
 */
import type { Metric, Registry } from "prom-client";

/** What the metric reads: each shortcut's name and count (http/server.ts Shortcuts). */
export interface ShortcutCounts {
  readonly lanes: ReadonlyArray<{ readonly name: string; readonly taken: number }>;
}

export function registerShortcutMetrics(registry: Registry, shortcuts: ShortcutCounts): void {
  const name = "mcpgw_shortcut_requests_total";
  const spec = {
    name,
    get: async () => ({
      name,
      help: "Requests answered by a shortcut ahead of fastify's routing, by shortcut",
      type: "counter",
      aggregator: "sum",
      values: shortcuts.lanes.map((lane) => ({ value: lane.taken, labels: { shortcut: lane.name } })),
    }),
  };
  registry.registerMetric(spec as unknown as Metric);
}
