/**
 * Tracing on the OpenTelemetry SDK, exported over OTLP/HTTP (JSON) in batches. Loaded only when
 * `otel.endpoint` is set (tracing.ts). The provider is the gateway's own, not the global one, so
 * nothing else in the process starts reporting through it by accident.
 */
import type { IncomingHttpHeaders } from "node:http";
import {
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { RequestSpan, SpanAttributes, Tracing } from "./tracing.js";

const propagator = new W3CTraceContextPropagator();

export interface OtelOptions {
  /** The collector's OTLP/HTTP base URL (traces go to `/v1/traces`), or that full URL. */
  endpoint: string;
  serviceName: string;
  /** Sent with every export (a collector's credential, say). */
  headers: Record<string, string>;
  exportDelaySeconds: number;
}

/** The traces URL for an OTLP/HTTP endpoint, as OTEL_EXPORTER_OTLP_ENDPOINT is read. */
export function tracesUrl(endpoint: string): string {
  if (/\/v1\/traces\/?$/.test(endpoint)) return endpoint;
  return `${endpoint.replace(/\/+$/, "")}/v1/traces`;
}

class SdkSpan implements RequestSpan {
  constructor(private readonly span: Span) {}

  set(attributes: SpanAttributes): void {
    for (const [key, value] of Object.entries(attributes)) {
      if (value !== undefined) this.span.setAttribute(key, value);
    }
  }

  rename(name: string): void {
    this.span.updateName(name);
  }

  headers(): Record<string, string> {
    const carrier: Record<string, string> = {};
    propagator.inject(trace.setSpan(ROOT_CONTEXT, this.span), carrier, defaultTextMapSetter);
    return carrier;
  }

  end(status: number): void {
    this.span.setAttribute("http.response.status_code", status);
    if (status >= 500) this.span.setStatus({ code: SpanStatusCode.ERROR });
    this.span.end();
  }
}

export class OtelTracing implements Tracing {
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;

  constructor(options: OtelOptions) {
    const exporter = new OTLPTraceExporter({ url: tracesUrl(options.endpoint), headers: options.headers });
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ "service.name": options.serviceName }),
      spanProcessors: [
        new BatchSpanProcessor(exporter, { scheduledDelayMillis: options.exportDelaySeconds * 1000 }),
      ],
    });
    this.tracer = this.provider.getTracer("mcp-oauth-gateway");
  }

  start(name: string, incoming: IncomingHttpHeaders, attributes: SpanAttributes): RequestSpan {
    const parent = propagator.extract(ROOT_CONTEXT, incoming, defaultTextMapGetter);
    const defined = Object.fromEntries(
      Object.entries(attributes).filter(([, v]) => v !== undefined),
    ) as Record<string, string | number | boolean>;
    return new SdkSpan(this.tracer.startSpan(name, { kind: SpanKind.SERVER, attributes: defined }, parent));
  }

  close(): Promise<void> {
    return this.provider.shutdown();
  }
}
