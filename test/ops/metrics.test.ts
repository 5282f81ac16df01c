/** /healthz, /readyz and /metrics as Prometheus and a load balancer see them. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";

describe("operations endpoints", () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startFullGateway({ services: { notes: { url: "http://127.0.0.1:9/mcp" } } });
  });
  afterAll(async () => gw.close({ wipe: true }));

  it("healthz and readyz answer; readyz names the store", async () => {
    expect(await (await fetch(`${gw.url}/healthz`)).json()).toEqual({ status: "ok" });
    expect(await (await fetch(`${gw.url}/readyz`)).json()).toEqual({ status: "ready", store: "sqlite" });
  });

  it("counts requests by route pattern, method and status, with a duration histogram", async () => {
    for (let i = 0; i < 3; i++) await fetch(`${gw.url}/healthz`);
    await fetch(`${gw.url}/notes/mcp?secret=should-not-appear`, { method: "POST", body: "{}" });
    await fetch(`${gw.url}/token`, { method: "POST" });
    const res = await fetch(`${gw.url}/metrics`);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    const line = (prefix: string) => text.split("\n").find((l) => l.startsWith(prefix));
    expect(line('mcpgw_http_requests_total{route="/healthz",method="GET",status="200"}')).toMatch(/ [45]$/);
    expect(line('mcpgw_http_requests_total{route="/:service/mcp",method="POST",status="401"}')).toMatch(
      / 1$/,
    );
    expect(line('mcpgw_http_requests_total{route="/token",method="POST",status="400"}')).toMatch(/ 1$/);
    expect(text).toContain("# TYPE mcpgw_http_request_duration_seconds histogram");
    const inf = Number(
      line('mcpgw_http_request_duration_seconds_bucket{le="+Inf",route="/healthz"}')?.split(" ")[1],
    );
    const count = Number(line('mcpgw_http_request_duration_seconds_count{route="/healthz"}')?.split(" ")[1]);
    const fast = Number(
      line('mcpgw_http_request_duration_seconds_bucket{le="1",route="/healthz"}')?.split(" ")[1],
    );
    expect(inf).toBeGreaterThanOrEqual(4);
    expect(count).toBe(inf);
    expect(fast).toBeLessThanOrEqual(inf);
    expect(text).toContain("mcpgw_process_cpu_user_seconds_total");
    expect(text).toMatch(/^mcpgw_nodejs_eventloop_lag_p99_seconds \d/m);
    // Labels carry route patterns only: no raw URLs, no query strings.
    expect(text).not.toContain("should-not-appear");
  });
});
