/**
 * Per-request metrics at hot-path cost: a request adds to plain counters under a string key,
 * and the Prometheus series are built only when /metrics is scraped. (prom-client's own
 * Counter/Histogram hash a label object on every call, which cost /verify a tenth of its
 * throughput.)
 */
import type { Metric, Registry } from "prom-client";

const BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5];

interface Count {
  route: string;
  method: string;
  status: string;
  n: number;
}

interface Timing {
  /** Cumulative-on-export counts per bucket (stored per bucket, summed at scrape). */
  buckets: number[];
  sum: number;
  count: number;
}

type Value = { value: number; labels: Record<string, string | number>; metricName?: string };

export class RequestMetrics {
  private readonly counts = new Map<string, Count>();
  private readonly timings = new Map<string, Timing>();

  /** One answered request. `route` is the route pattern, never the raw URL. */
  record(route: string, method: string, status: number, seconds: number): void {
    const key = `${route} ${method} ${status}`;
    const count = this.counts.get(key);
    if (count) count.n++;
    else this.counts.set(key, { route, method, status: String(status), n: 1 });

    let timing = this.timings.get(route);
    if (!timing) {
      timing = { buckets: new Array(BUCKETS.length + 1).fill(0), sum: 0, count: 0 };
      this.timings.set(route, timing);
    }
    let i = 0;
    while (i < BUCKETS.length && seconds > (BUCKETS[i] as number)) i++;
    timing.buckets[i] = (timing.buckets[i] ?? 0) + 1;
    timing.sum += seconds;
    timing.count++;
  }

  /** Adds the two series to a prom-client registry, computed at scrape time. */
  register(registry: Registry): void {
    const requests = {
      name: "mcpgw_http_requests_total",
      get: async () => ({
        name: "mcpgw_http_requests_total",
        help: "HTTP requests by route, method and status",
        type: "counter",
        aggregator: "sum",
        values: [...this.counts.values()].map(
          (c): Value => ({ value: c.n, labels: { route: c.route, method: c.method, status: c.status } }),
        ),
      }),
    };
    const duration = {
      name: "mcpgw_http_request_duration_seconds",
      get: async () => ({
        name: "mcpgw_http_request_duration_seconds",
        help: "Time to the response, by route",
        type: "histogram",
        aggregator: "sum",
        values: [...this.timings.entries()].flatMap(([route, t]) => this.histogramValues(route, t)),
      }),
    };
    registry.registerMetric(requests as unknown as Metric);
    registry.registerMetric(duration as unknown as Metric);
  }

  private histogramValues(route: string, t: Timing): Value[] {
    const name = "mcpgw_http_request_duration_seconds";
    const values: Value[] = [];
    let cumulative = 0;
    BUCKETS.forEach((le, i) => {
      cumulative += t.buckets[i] ?? 0;
      values.push({ value: cumulative, labels: { le, route }, metricName: `${name}_bucket` });
    });
    values.push({ value: t.count, labels: { le: "+Inf", route }, metricName: `${name}_bucket` });
    values.push({ value: t.sum, labels: { route }, metricName: `${name}_sum` });
    values.push({ value: t.count, labels: { route }, metricName: `${name}_count` });
    return values;
  }
}
