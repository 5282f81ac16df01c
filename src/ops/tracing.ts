/**
 * Request tracing, as the rest of the code sees it: a Tracing that starts one span per request,
 * or none at all. Off (no `otel.endpoint`) there is no Tracing object, so callers hold
 * `undefined` and do nothing per request, and the OpenTelemetry SDK is never loaded: it is
 * imported (otel-sdk.ts) only when tracing is on.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { GatewayConfig } from "../config/schema.js";

export type SpanAttributes = Record<string, string | number | boolean | undefined>;

/** One request's span. Attributes whose value is undefined are left out. */
export interface RequestSpan {
  set(attributes: SpanAttributes): void;
  rename(name: string): void;
  /** W3C Trace Context headers (`traceparent`, `tracestate`) naming this span, for the next hop. */
  headers(): Record<string, string>;
  /** Ends the span with the HTTP status the client got (5xx marks it an error). */
  end(status: number): void;
}

export interface Tracing {
  /**
   * A server span whose parent is the W3C trace context the request carries (a client's
   * `traceparent`), or a new trace.
   */
  start(name: string, incoming: IncomingHttpHeaders, attributes: SpanAttributes): RequestSpan;
  /** Exports what is still buffered, then stops. */
  close(): Promise<void>;
}

/** The tracer `otel` asks for, or undefined when tracing is off. */
export async function startTracing(otel: GatewayConfig["otel"]): Promise<Tracing | undefined> {
  if (!otel.endpoint) return undefined;
  const { OtelTracing } = await import("./otel-sdk.js");
  return new OtelTracing({
    endpoint: otel.endpoint,
    serviceName: otel.service_name,
    headers: otel.headers,
    exportDelaySeconds: otel.export_delay,
  });
}
