/**
 * OpenTelemetry tracing: with `otel.endpoint` set, one span per MCP request reaches a real
 * OTLP/HTTP receiver (route, service, MCP method and tool, the authorization decision and its
 * reason, a hash of the user id, upstream latency), and the span's W3C trace context goes on:
 * as `traceparent` to an HTTP upstream, and into `params._meta` of a bridged stdio server's
 * requests (SEP-414). The gateway is the whole app, listening; clients are the MCP SDK's.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { userHash } from "../../src/gateway/request-trace.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { startGateway } from "../support/gateway.js";
import { MCP_HEADERS, postInitialize, raw } from "../support/mcp-http.js";
import { mintAccessToken } from "../support/mint.js";
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from "../support/otlp-receiver.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";

const META_ECHO = fileURLToPath(new URL("../support/meta-echo-stdio.mjs", import.meta.url));
/** A client's own trace context: the gateway's span must be its child. */
const CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN = "00f067aa0ba902b7";

let receiver: OtlpReceiver;
let upstream: TestUpstream;
let gw: RunningGateway;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  upstream = await startUpstream();
  gw = await startFullGateway({
    otel: { endpoint: receiver.url, service_name: "gateway-under-test", export_delay: 1 },
    services: {
      echo: { url: upstream.url },
      traced: { command: process.execPath, args: [META_ECHO], enabled: true },
    },
  });
}, 60_000);

afterAll(async () => {
  await gw?.close({ wipe: true });
  await upstream?.close();
  await receiver?.close();
});

function token(service: string, sub = "github|4242") {
  return mintAccessToken(gw.keys, {
    iss: gw.config.public_url,
    aud: `${gw.config.public_url}/${service}/mcp`,
    sub,
    client_id: "tracing-client",
  });
}

async function connect(service: string, headers: Record<string, string>) {
  const client = new Client({ name: "tracing-test", version: "1.0.0" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${gw.url}/${service}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${await token(service)}`, ...headers } },
    }),
  );
  return client;
}

/** The exported span matching `pick`, once the batch with it has arrived. */
async function exported(pick: (s: ReceivedSpan) => boolean): Promise<ReceivedSpan> {
  await expect.poll(() => receiver.spans.some(pick), { timeout: 20_000, interval: 100 }).toBe(true);
  return receiver.spans.find(pick) as ReceivedSpan;
}

function traceparentParts(value: unknown): { traceId: string; spanId: string } {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/.exec(String(value));
  expect(m, `a W3C traceparent: ${String(value)}`).not.toBeNull();
  return { traceId: m?.[1] ?? "", spanId: m?.[2] ?? "" };
}

describe("tracing on", () => {
  it("a tools/call through the proxy: one span with its attributes, continued upstream", async () => {
    const client = await connect("echo", { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` });
    let seen: Record<string, string>;
    try {
      const result = await client.callTool({ name: "whoami", arguments: {} });
      seen = JSON.parse((result.content as Array<{ text: string }>)[0]?.text ?? "{}");
    } finally {
      await client.close();
    }
    const span = await exported((s) => s.name === "tools/call whoami");
    expect(span.resource["service.name"]).toBe("gateway-under-test");
    expect(span.attributes).toMatchObject({
      "http.request.method": "POST",
      "http.route": "/:service/mcp",
      "gateway.service": "echo",
      "mcp.method.name": "tools/call",
      "gen_ai.tool.name": "whoami",
      "gateway.authz.decision": "allow",
      "gateway.authz.reason": "token accepted",
      "gateway.client_id": "tracing-client",
      "user.hash": userHash("github|4242"),
      "http.response.status_code": 200,
    });
    expect(typeof span.attributes["gateway.upstream.latency_ms"]).toBe("number");
    // No user id in the clear anywhere in what was exported.
    expect(JSON.stringify(receiver.spans)).not.toContain("github|4242");
    // The client's trace goes on through the gateway's span...
    expect(span.traceId).toBe(CLIENT_TRACE);
    expect(span.parentSpanId).toBe(CLIENT_SPAN);
    // ...to the upstream, whose request names the gateway's span as its parent.
    const upstreamContext = traceparentParts(seen.traceparent);
    expect(upstreamContext).toEqual({ traceId: span.traceId, spanId: span.spanId });
  }, 60_000);

  it("a refused request: its span says deny and why", async () => {
    const res = await raw(`${gw.url}/echo/mcp`, {
      method: "POST",
      headers: { ...MCP_HEADERS, authorization: `Bearer ${await token("traced")}` },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(res.status).toBe(401);
    const span = await exported(
      (s) => s.attributes["gateway.authz.decision"] === "deny" && s.attributes["gateway.service"] === "echo",
    );
    expect(span.attributes["gateway.authz.reason"]).toBe(
      "The access token is not meant for the service echo",
    );
    expect(span.attributes["http.response.status_code"]).toBe(401);
    expect(span.parentSpanId).toBeUndefined();
  }, 60_000);

  it("/verify (ForwardAuth): one span per decision, the cached ones too", async () => {
    const good = await token("echo", "github|77");
    for (let i = 0; i < 2; i++) {
      const res = await raw(`${gw.url}/verify?service=echo`, {
        headers: { authorization: `Bearer ${good}` },
      });
      expect(res.status).toBe(200);
    }
    const hash = userHash("github|77");
    await expect
      .poll(() => receiver.spans.filter((s) => s.attributes["user.hash"] === hash).length, {
        timeout: 20_000,
      })
      .toBe(2);
    const span = receiver.spans.find((s) => s.attributes["user.hash"] === hash) as ReceivedSpan;
    expect(span.attributes).toMatchObject({
      "http.route": "/verify",
      "gateway.service": "echo",
      "gateway.authz.decision": "allow",
      "http.response.status_code": 200,
    });
  }, 60_000);

  it("a bridged stdio server gets the span's trace context in _meta (SEP-414)", async () => {
    const client = await connect("traced", {});
    let meta: Record<string, unknown>;
    try {
      const result = await client.callTool({ name: "meta", arguments: {} });
      meta = JSON.parse((result.content as Array<{ text: string }>)[0]?.text ?? "{}");
    } finally {
      await client.close();
    }
    const span = await exported((s) => s.name === "tools/call meta");
    expect(span.attributes["gateway.service"]).toBe("traced");
    expect(traceparentParts(meta.traceparent)).toEqual({ traceId: span.traceId, spanId: span.spanId });
    expect(receiver.contentTypes.every((t) => t.startsWith("application/json"))).toBe(true);
  }, 60_000);
});

describe("tracing off (no otel.endpoint)", () => {
  it("the SDK is imported by one module, which is loaded only when tracing is on", () => {
    const src = fileURLToPath(new URL("../../src", import.meta.url));
    const files = readdirSync(src, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
    const importers = files.filter((f) => /from "@opentelemetry\//.test(readFileSync(join(src, f), "utf8")));
    expect(importers).toEqual([join("ops", "otel-sdk.ts")]);
    const loaders = files.filter((f) => readFileSync(join(src, f), "utf8").includes("otel-sdk.js"));
    expect(loaders).toEqual([join("ops", "tracing.ts")]);
    expect(readFileSync(join(src, "ops", "tracing.ts"), "utf8")).toContain('await import("./otel-sdk.js")');
  });

  it("a client's traceparent reaches the upstream untouched", async () => {
    const plain = await startGateway({ services: { echo: { url: upstream.url } } });
    try {
      const traceparent = `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`;
      const res = await postInitialize(`${plain.url}/echo/mcp`, {
        authorization: `Bearer ${await plain.token("echo")}`,
        traceparent,
        tracestate: "vendor=1",
      });
      expect(res.status).toBe(200);
      expect(upstream.requests.at(-1)?.headers).toMatchObject({ traceparent, tracestate: "vendor=1" });
    } finally {
      await plain.close();
    }
  });
});
