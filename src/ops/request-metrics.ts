/**
 * Per-request metrics at hot-path cost: a request adds to plain counters found by route, method
 * and status in turn (strings the caller already holds, so no key string is built and hashed per
 * request), and the Prometheus series are built only when /metrics is scraped. (prom-client's
 * own Counter/Histogram hash a label object on every call, which cost /verify a tenth of its
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

/** One route's series: its durations, and its counts by method, then status. */
interface RouteSeries {
  timing: Timing;
  counts: Map<string, Map<number, Count>>;
}

type Value = { value: number; labels: Record<string, string | number>; metricName?: string };

interface ToolCount {
  service: string;
  tool: string;
  outcome: string;
  n: number;
}

/**
 * Distinct tool names counted per service. Names come from request bodies, so a client could
 * invent new ones without end; past this many, the rest are counted as `(other)`.
 */
const MAX_TOOLS_PER_SERVICE = 200;

export class RequestMetrics {
  /** Route -> its series, in the order routes were first seen (the order /metrics lists them). */
  private readonly routes = new Map<string, RouteSeries>();
  /** Every count, in the order first seen (the order /metrics lists them). */
  private readonly counts: Count[] = [];
  private readonly toolCounts = new Map<string, ToolCount>();
  private readonly toolTimings = new Map<string, { service: string; tool: string; timing: Timing }>();
  private readonly toolNames = new Map<string, Set<string>>();

  /** One answered request. `route` is the route pattern, never the raw URL. */
  record(route: string, method: string, status: number, seconds: number): void {
    let series = this.routes.get(route);
    if (!series) {
      series = { timing: newTiming(), counts: new Map() };
      this.routes.set(route, series);
    }
    let byStatus = series.counts.get(method);
    if (!byStatus) {
      byStatus = new Map();
      series.counts.set(method, byStatus);
    }
    const count = byStatus.get(status);
    if (count) count.n++;
    else {
      const added = { route, method, status: String(status), n: 1 };
      byStatus.set(status, added);
      this.counts.push(added);
    }
    observe(series.timing, seconds);
  }

  /**
   * One tool call on a service with a per-tool policy: how it ended (`ok`, `tool_error`,
   * `error`, `denied`, `step_up`, …) and how long it took (the whole answer, for a stream).
   */
  recordTool(service: string, toolName: string, outcome: string, seconds: number): void {
    const tool = this.toolLabel(service, toolName);
    const key = `${service} ${tool} ${outcome}`;
    const count = this.toolCounts.get(key);
    if (count) count.n++;
    else this.toolCounts.set(key, { service, tool, outcome, n: 1 });
    const timingKey = `${service} ${tool}`;
    let entry = this.toolTimings.get(timingKey);
    if (!entry) {
      entry = { service, tool, timing: newTiming() };
      this.toolTimings.set(timingKey, entry);
    }
    observe(entry.timing, seconds);
  }

  private toolLabel(service: string, tool: string): string {
    let names = this.toolNames.get(service);
    if (!names) {
      names = new Set();
      this.toolNames.set(service, names);
    }
    if (names.has(tool)) return tool;
    if (names.size >= MAX_TOOLS_PER_SERVICE) return "(other)";
    names.add(tool);
    return tool;
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
        values: this.counts.map(
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
        values: [...this.routes.entries()].flatMap(([route, s]) => this.histogramValues(route, s.timing)),
      }),
    };
    const toolCalls = {
      name: "mcpgw_tool_calls_total",
      get: async () => ({
        name: "mcpgw_tool_calls_total",
        help: "Tool calls on services with a per-tool policy, by service, tool and outcome",
        type: "counter",
        aggregator: "sum",
        values: [...this.toolCounts.values()].map(
          (c): Value => ({ value: c.n, labels: { service: c.service, tool: c.tool, outcome: c.outcome } }),
        ),
      }),
    };
    const toolDuration = {
      name: "mcpgw_tool_call_duration_seconds",
      get: async () => ({
        name: "mcpgw_tool_call_duration_seconds",
        help: "Time to a tool call's whole answer, by service and tool",
        type: "histogram",
        aggregator: "sum",
        values: [...this.toolTimings.values()].flatMap((e) =>
          histogramValues("mcpgw_tool_call_duration_seconds", { service: e.service, tool: e.tool }, e.timing),
        ),
      }),
    };
    registry.registerMetric(requests as unknown as Metric);
    registry.registerMetric(duration as unknown as Metric);
    registry.registerMetric(toolCalls as unknown as Metric);
    registry.registerMetric(toolDuration as unknown as Metric);
  }

  private histogramValues(route: string, t: Timing): Value[] {
    return histogramValues("mcpgw_http_request_duration_seconds", { route }, t);
  }
}

function newTiming(): Timing {
  return { buckets: new Array(BUCKETS.length + 1).fill(0), sum: 0, count: 0 };
}

function observe(timing: Timing, seconds: number): void {
  let i = 0;
  while (i < BUCKETS.length && seconds > (BUCKETS[i] as number)) i++;
  timing.buckets[i] = (timing.buckets[i] ?? 0) + 1;
  timing.sum += seconds;
  timing.count++;
}

function histogramValues(name: string, labels: Record<string, string>, t: Timing): Value[] {
  const values: Value[] = [];
  let cumulative = 0;
  BUCKETS.forEach((le, i) => {
    cumulative += t.buckets[i] ?? 0;
    values.push({ value: cumulative, labels: { le, ...labels }, metricName: `${name}_bucket` });
  });
  values.push({ value: t.count, labels: { le: "+Inf", ...labels }, metricName: `${name}_bucket` });
  values.push({ value: t.sum, labels, metricName: `${name}_sum` });
  values.push({ value: t.count, labels, metricName: `${name}_count` });
  return values;
}
