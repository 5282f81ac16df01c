/**
 * What `serve` prints, as a collector and as a person see it: with stdout piped, JSON lines with
 * ISO-8601 times and nothing else on stdout (the banner is on stderr); on a pseudo-terminal,
 * readable lines. And the operations endpoints: on their own listener with `ops.port` (and then
 * not on the main one), /metrics behind `ops.metrics_token` when set.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { childrenOf, waitFor } from "../bridge/helpers.js";
import { plain, SCRIPT, spawnInPty } from "../support/pty.js";
import { freePort } from "../support/upstream.js";
import { BIN, BUILT, cleanEnv, type ServeProcess, startServe } from "./serve-process.js";

const canRun = (BUILT && SCRIPT.available) || process.env.CI === "true";
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const METRICS_TOKEN = "metrics-token-for-the-test-0123456789";

const dirs: string[] = [];
function freshDir(config: string): string {
  const dir = mkdtempSync(join(tmpdir(), "mcpgw-logs-"));
  dirs.push(dir);
  writeFileSync(join(dir, "gateway.yaml"), config);
  return dir;
}

const get = (url: string, headers: Record<string, string> = {}) => fetch(url, { headers });

describe.skipIf(!canRun)("serve's log and operations endpoints (run `npm run build` first)", () => {
  const running: ServeProcess[] = [];
  afterAll(async () => {
    await Promise.all(running.map((s) => s.stop()));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  describe("stdout piped, /metrics behind ops.metrics_token", () => {
    let gateway: ServeProcess;
    beforeAll(async () => {
      const dir = freshDir(`ops:\n  metrics_token: ${METRICS_TOKEN}\n`);
      gateway = await startServe({ cwd: dir, args: ["--no-builtins"] });
      running.push(gateway);
    }, 120_000);

    it("stdout is JSON lines with ISO-8601 times, and only that; the banner is on stderr", async () => {
      // A query string never reaches the log, not even for a path that does not exist.
      expect((await get(`${gateway.base}/no-such-page?code=query-secret-1234`)).status).toBe(404);
      expect((await get(`${gateway.base}/healthz`)).status).toBe(200);
      await waitFor(() => gateway.stdout().includes('"path":"/healthz"'), 30_000);
      expect(gateway.stdout()).toContain('"path":"/no-such-page"');
      expect(gateway.stdout()).not.toContain("query-secret-1234");
      const lines = gateway.stdout().split("\n").filter(Boolean);
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) {
        const record = JSON.parse(line) as { time: unknown; level: unknown; msg: unknown };
        expect(record.time, line).toMatch(ISO_TIME);
        expect(typeof record.level).toBe("number");
      }
      const completed = lines
        .map((l) => JSON.parse(l) as { msg: string; req?: { path: string }; res?: { statusCode: number } })
        .find((r) => r.msg === "request completed" && r.req?.path === "/healthz");
      expect(completed?.res?.statusCode).toBe(200);

      expect(gateway.stdout()).not.toContain("listening on");
      expect(gateway.stderr()).toContain(`mcp-oauth-gateway listening on http://127.0.0.1:${gateway.port}`);
      expect(gateway.stderr()).toContain("(shown once");
    });

    it("/metrics needs the bearer token; /healthz and /readyz do not", async () => {
      const none = await get(`${gateway.base}/metrics`);
      expect(none.status).toBe(401);
      expect(none.headers.get("www-authenticate")).toBe('Bearer realm="metrics"');
      const wrong = await get(`${gateway.base}/metrics`, { authorization: "Bearer not-the-token" });
      expect(wrong.status).toBe(401);
      expect(wrong.headers.get("www-authenticate")).toContain('error="invalid_token"');
      expect(await wrong.json()).toMatchObject({ error: "invalid_token" });
      const right = await get(`${gateway.base}/metrics`, { authorization: `Bearer ${METRICS_TOKEN}` });
      expect(right.status).toBe(200);
      expect(await right.text()).toContain("mcpgw_http_requests_total");
      expect((await get(`${gateway.base}/healthz`)).status).toBe(200);
      expect((await get(`${gateway.base}/readyz`)).status).toBe(200);
    });
  });

  it("a line for every request answered, even when SIGTERM comes right after a burst", {
    timeout: 120_000,
  }, async () => {
    const gateway = await startServe({ cwd: freshDir(""), args: ["--no-builtins"] });
    running.push(gateway);
    const BURST = 300;
    const paths = Array.from({ length: BURST }, (_, i) => `/burst-${i}`);
    // Several at a time, so lines are written while earlier writes are still under way.
    for (let i = 0; i < BURST; i += 30)
      await Promise.all(
        paths.slice(i, i + 30).map(async (path) => (await get(`${gateway.base}${path}`)).text()),
      );
    expect(await gateway.stop()).toBe(0);
    const logged = new Set(
      gateway
        .stdout()
        .split("\n")
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { msg: string; req?: { path: string } }).req?.path)
        .filter((p) => p?.startsWith("/burst-")),
    );
    expect(paths.filter((p) => !logged.has(p))).toEqual([]);
  });

  it("ops.port: /healthz, /readyz and /metrics on their own listener, and 404 on the main one", async () => {
    const opsPort = await freePort();
    // And log_format: pretty, which makes readable lines even into a pipe.
    const dir = freshDir(`log_format: pretty\nops:\n  port: ${opsPort}\n`);
    const gateway = await startServe({ cwd: dir, args: ["--no-builtins"] });
    running.push(gateway);
    const ops = `http://127.0.0.1:${opsPort}`;
    expect(gateway.stderr()).toContain(`ops:      ${ops} (/healthz, /readyz, /metrics)`);

    expect((await get(`${ops}/healthz`)).status).toBe(200);
    expect(await (await get(`${ops}/readyz`)).json()).toMatchObject({ status: "ready" });
    const metrics = await get(`${ops}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain("mcpgw_");
    for (const path of ["/healthz", "/readyz", "/metrics"]) {
      expect((await get(`${gateway.base}${path}`)).status, path).toBe(404);
    }
    // The main listener still serves the authorization server.
    expect((await get(`${gateway.base}/.well-known/oauth-authorization-server`)).status).toBe(200);
    // And the ops listener serves nothing else.
    expect((await get(`${ops}/.well-known/oauth-authorization-server`)).status).toBe(404);
    // Scrapes are not logged; the main listener's requests are, readable as asked.
    const line = /^\[(\S+)\] INFO.*: request completed GET \/metrics 404 [\d.]+ ms/m;
    await waitFor(() => line.test(plain(gateway.stdout())), 30_000);
    expect(plain(gateway.stdout())).not.toMatch(/request completed GET \/metrics 200/);
  }, 120_000);

  it("on a terminal: readable lines with ISO-8601 times, not JSON", async () => {
    const dir = freshDir("{}\n");
    const port = await freePort();
    const term = spawnInPty([process.execPath, BIN, "serve", "--port", String(port), "--no-builtins"], {
      cwd: dir,
      env: cleanEnv(),
    });
    const exited = new Promise<number | null>((r) => term.child.once("exit", (code) => r(code)));
    try {
      await waitFor(() => term.output().includes("(shown once"), 60_000);
      expect((await get(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      const line = /^\[(\S+)\] INFO.*: request completed GET \/healthz 200 [\d.]+ ms/m;
      await waitFor(() => line.test(term.output()), 30_000);
      expect(line.exec(term.output())?.[1]).toMatch(ISO_TIME);
      expect(term.output()).not.toMatch(/^\{"level"/m);
    } finally {
      // SIGTERM to serve itself (script's child), which stops cleanly; script then exits.
      const serve = childrenOf(term.child.pid as number);
      for (const pid of serve) process.kill(pid, "SIGTERM");
      if (serve.length === 0) term.child.kill("SIGTERM");
      await exited;
    }
  }, 120_000);
});
