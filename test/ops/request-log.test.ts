/**
 * One access-log line and one metrics count per answered request, the same whichever lane
 * answered it: fastify, or the /verify shortcut that answers cached verdicts ahead of it.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../bridge/helpers.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { INITIALIZE, MCP_HEADERS, raw } from "../support/mcp-http.js";
import { mintAccessToken } from "../support/mint.js";
import { startUpstream } from "../support/upstream.js";

interface Line {
  msg: string;
  reqId?: string;
  req?: { method: string; path: string; ip: string };
  res?: { statusCode: number };
  responseTime?: number;
}

describe("request log and metrics across both lanes", () => {
  const lines: string[] = [];
  let gw: RunningGateway;
  let token: string;

  beforeAll(async () => {
    gw = await startFullGateway(
      { log_level: "info", trust_proxy: true, services: { echo: { url: "http://127.0.0.1:9/mcp" } } },
      { logLines: lines },
    );
    token = await mintAccessToken(gw.keys, {
      iss: gw.config.public_url,
      aud: `${gw.config.public_url}/echo/mcp`,
    });
  });
  afterAll(async () => gw.close({ wipe: true }));

  it("logs each /verify once, with the same fields, and counts it", async () => {
    const headers = { "x-forwarded-uri": "/echo/mcp", "x-forwarded-for": "203.0.113.9" };
    const statuses: number[] = [];
    const taken = gw.shortcuts.taken;
    statuses.push((await raw(`${gw.url}/verify`, { headers })).status);
    for (let i = 0; i < 3; i++) {
      const res = await raw(`${gw.url}/verify?x=${i}`, {
        headers: { ...headers, authorization: `Bearer ${token}`, cookie: "mcpgw_session=cookie-secret-5678" },
      });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([401, 200, 200, 200]);

    const parsed = lines.map((l) => JSON.parse(l) as Line);
    expect(parsed.some((l) => l.msg === "incoming request")).toBe(false);
    const verifies = parsed.filter((l) => l.msg === "request completed" && l.req?.path === "/verify");
    expect(verifies).toHaveLength(4);
    for (const line of verifies) {
      expect(line.req).toEqual({ method: "GET", path: "/verify", ip: "203.0.113.9" });
      expect(line.responseTime).toBeGreaterThan(0);
    }
    expect(verifies.map((l) => l.res?.statusCode)).toEqual([401, 200, 200, 200]);
    // The first sight of the token went through fastify; the repeats were answered from the
    // cached verdict ahead of fastify. Every line carries a request id of the one sequence.
    expect(gw.shortcuts.taken - taken).toBe(2);
    const ids = verifies.map((l) => l.reqId);
    for (const id of ids) expect(id).toMatch(/^req-[0-9a-z]+$/);
    expect(new Set(ids).size).toBe(4);
    // No query string, no token, no cookie, in any line (the log has no redaction to rely on:
    // the serializers never write a header).
    expect(lines.join("\n")).not.toContain(token.slice(-20));
    expect(lines.join("\n")).not.toContain("cookie-secret-5678");
    expect(lines.join("\n")).not.toContain("x=1");

    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toContain('mcpgw_http_requests_total{route="/verify",method="GET",status="200"} 3');
    expect(metrics).toContain('mcpgw_http_requests_total{route="/verify",method="GET",status="401"} 1');
    expect(metrics).toMatch(/mcpgw_http_request_duration_seconds_count\{route="\/verify"\} 4/);
  });

  it("takes the cached lane for ?service= and bodiless POSTs too, not for a POST with a body", async () => {
    const lanes = async (url: string, init: { method?: string; body?: string } = {}) => {
      const taken: string[] = [];
      for (let i = 0; i < 2; i++) {
        const before = gw.shortcuts.taken;
        const res = await raw(url, { ...init, headers: { authorization: `Bearer ${token}` } });
        expect(res.status).toBe(200);
        taken.push(gw.shortcuts.taken > before ? "shortcut" : "fastify");
      }
      return taken;
    };
    // One answer puts the token's verdicts in the caches; from then on the shortcut may answer.
    await raw(`${gw.url}/verify?service=echo`, { headers: { authorization: `Bearer ${token}` } });
    expect(await lanes(`${gw.url}/verify?service=echo`)).toEqual(["shortcut", "shortcut"]);
    expect(await lanes(`${gw.url}/verify?service=echo`, { method: "POST" })).toEqual([
      "shortcut",
      "shortcut",
    ]);
    expect(await lanes(`${gw.url}/verify?service=echo`, { method: "POST", body: "{}" })).toEqual([
      "fastify",
      "fastify",
    ]);
  });
});

describe("log_requests: false", () => {
  it("drops the per-request lines of both lanes, keeps the counts and the audit events", async () => {
    const lines: string[] = [];
    const gw = await startFullGateway(
      { log_level: "info", log_requests: false, services: { echo: { url: "http://127.0.0.1:9/mcp" } } },
      { logLines: lines },
    );
    try {
      const good = await mintAccessToken(gw.keys, {
        iss: gw.config.public_url,
        aud: `${gw.config.public_url}/echo/mcp`,
      });
      const other = await mintAccessToken(gw.keys, {
        iss: gw.config.public_url,
        aud: "http://elsewhere/mcp",
      });
      for (const token of [good, good, good, other]) {
        await raw(`${gw.url}/verify?service=echo`, { headers: { authorization: `Bearer ${token}` } });
      }
      const parsed = lines.map((l) => JSON.parse(l) as Line & { audit?: { type: string } });
      expect(parsed.filter((l) => l.msg === "request completed")).toEqual([]);
      expect(parsed.filter((l) => l.audit).map((l) => l.audit?.type)).toEqual(["access.refused"]);
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      expect(metrics).toContain('mcpgw_http_requests_total{route="/verify",method="GET",status="200"} 3');
    } finally {
      await gw.close({ wipe: true });
    }
  });
});

/**
 * With trust_proxy on, every line names the client by the address the trusted proxy forwarded,
 * on every response path: a streamed (hijacked) reply, the 202 without body that answers
 * `notifications/initialized`, a session's DELETE, and a client that leaves mid-stream. Writing
 * such a line used to read the socket after Node had let go of it, and the TypeError thrown
 * from the 'finish' listener ended the process.
 */
describe("trust_proxy: a line for every response path, and the process lives", () => {
  it("an MCP session through a trusted hop, and a client gone before its line", async () => {
    const upstream = await startUpstream();
    const lines: string[] = [];
    const gw = await startFullGateway(
      { log_level: "info", trust_proxy: "127.0.0.1", services: { echo: { url: upstream.url } } },
      { logLines: lines },
    );
    try {
      const token = await mintAccessToken(gw.keys, {
        iss: gw.config.public_url,
        aud: `${gw.config.public_url}/echo/mcp`,
      });
      const headers = { authorization: `Bearer ${token}`, "x-forwarded-for": "198.51.100.7" };
      const client = new Client({ name: "log-test", version: "1.0.0" });
      const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}/echo/mcp`), {
        requestInit: { headers },
      });
      await client.connect(transport);
      expect((await client.listTools()).tools.length).toBeGreaterThan(0);
      await transport.terminateSession();
      await client.close();

      // A client that leaves while its answer is still streaming.
      const streaming = await request(`${gw.url}/echo/mcp`, {
        method: "POST",
        headers: { ...MCP_HEADERS, ...headers },
        body: JSON.stringify(INITIALIZE),
      });
      streaming.body.on("error", () => {});
      streaming.body.destroy();

      const answered = () =>
        lines
          .map((l) => JSON.parse(l) as Line & { err?: unknown })
          .filter((l) => l.req?.path === "/echo/mcp");
      await waitFor(() => answered().some((l) => l.req?.method === "DELETE"), 5000);
      expect((await raw(`${gw.url}/healthz`)).status).toBe(200);
      const statuses = answered().map((l) => l.res?.statusCode);
      expect(statuses).toContain(202);
      for (const line of answered()) {
        expect(line.req?.ip).toBe("198.51.100.7");
        expect(line.msg).toBe("request completed");
      }
    } finally {
      await gw.close({ wipe: true });
      await upstream.close();
    }
  });
});
