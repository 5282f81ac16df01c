/**
 * `mcp-gateway login` to things that are not an OAuth-protected MCP server, over real sockets:
 * a mistyped service and /healthz on the real gateway, an MCP server that asks for no login, a
 * proxy answering 502, a closed port, a name that does not resolve, and TLS to a plain-HTTP port.
 * Each says what it found (and registers nothing, opens no browser); network errors name the
 * host and the cause.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addLocalUser } from "../oauth/helpers.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { freePort, startUpstream, type TestUpstream } from "../support/upstream.js";
import { BUILT, runCli } from "./cli-process.js";
import { modernHandler } from "./scenario/mcp-servers.js";
import { serveFetch, type WebServer } from "./scenario/web-server.js";

const run = BUILT || process.env.CI === "true";
if (!run) console.warn("skipping test/client/login-errors.test.ts: run `npm run build` first");

describe.skipIf(!run)("login to something that is not an OAuth-protected MCP server", () => {
  let gw: RunningGateway;
  let upstream: TestUpstream;
  let open: WebServer;
  let badGateway: WebServer;
  let root: string;
  let n = 0;
  const dir = () => join(root, `c${n++}`);

  /** Runs login with a short --timeout: a login that waits for a browser fails on "timed out". */
  const login = (url: string) => runCli(["login", url, "--no-browser", "--timeout", "5s"], dir());

  beforeAll(async () => {
    upstream = await startUpstream();
    gw = await startFullGateway({ services: { time: { url: upstream.url } } });
    await addLocalUser(gw);
    open = await serveFetch(modernHandler());
    badGateway = await serveFetch(() => new Response(null, { status: 502, statusText: "Bad Gateway" }));
    root = mkdtempSync(join(tmpdir(), "mcpgw-login-errors-"));
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
    await upstream?.close();
    await open?.close();
    await badGateway?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const expectNoLoginStarted = (out: { stdout: string; stderr: string }) => {
    expect(out.stdout).toBe("");
    expect(out.stderr).not.toContain("Open this URL");
    expect(out.stderr).not.toContain("timed out");
  };

  it("a mistyped service on the gateway: there is no MCP server at that URL", async () => {
    const out = await login(`${gw.url}/tiem/mcp`);
    expect(out.code).toBe(1);
    expectNoLoginStarted(out);
    expect(out.stderr).toContain(`${gw.url}/tiem/mcp is not an OAuth-protected MCP server`);
    expect(out.stderr).toContain("HTTP 404");
  });

  it("/healthz on the gateway: not an MCP endpoint", async () => {
    const out = await login(`${gw.url}/healthz`);
    expect(out.code).toBe(1);
    expectNoLoginStarted(out);
    expect(out.stderr).toContain(`${gw.url}/healthz is not an OAuth-protected MCP server`);
  });

  it("an MCP server that answers without a token: no login is needed", async () => {
    const out = await login(`${open.origin}/mcp`);
    expect(out.code).toBe(1);
    expectNoLoginStarted(out);
    expect(out.stderr).toContain("asks for no authorization");
  });

  it("a proxy answering 502: says so, with the status", async () => {
    const out = await login(`${badGateway.origin}/mcp`);
    expect(out.code).toBe(1);
    expectNoLoginStarted(out);
    expect(out.stderr).toContain("HTTP 502 Bad Gateway");
    expect(out.stderr).not.toMatch(/: \s*$/);
  });

  it("a closed port: names the host and ECONNREFUSED", async () => {
    const port = await freePort();
    const out = await login(`http://127.0.0.1:${port}/mcp`);
    expect(out.code).toBe(1);
    expectNoLoginStarted(out);
    expect(out.stderr).toContain(`127.0.0.1:${port}`);
    expect(out.stderr).toContain("ECONNREFUSED");
    expect(out.stderr).not.toContain("fetch failed");
  });

  it("a name that does not resolve: names the host and ENOTFOUND", async () => {
    const out = await login("http://no-such-host.invalid/mcp");
    expect(out.code).toBe(1);
    expect(out.stderr).toContain("no-such-host.invalid");
    expect(out.stderr).toContain("ENOTFOUND");
    expect(out.stderr).not.toContain("fetch failed");
  });

  it("TLS to a plain-HTTP port: names the host and says TLS", async () => {
    const out = await login(`https://127.0.0.1:${open.port}/mcp`);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`127.0.0.1:${open.port}`);
    expect(out.stderr).toMatch(/TLS/);
    expect(out.stderr).not.toContain("fetch failed");
  });
});
