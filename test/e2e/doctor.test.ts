/**
 * `mcp-gateway doctor` as a user runs it: against a real upstream, a port nobody listens on, a
 * missing command, a missing script, an upstream that wants its own credentials, and a public
 * URL MCP clients would refuse; exit 1 when anything fails, 0 when all is well.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOidcProvider } from "../support/oidc-provider.js";
import { freePort, startUpstream, type TestUpstream } from "../support/upstream.js";
import { runDoctor } from "./doctor-process.js";

const BUILT = existsSync(resolve("dist/cli/main.js"));

describe.skipIf(!BUILT && process.env.CI !== "true")("mcp-gateway doctor", () => {
  let dir: string;
  let upstream: TestUpstream;
  /** An MCP server behind its own auth: answers 401 to everything. */
  let guarded: Server;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "mcpgw-doctor-"));
    upstream = await startUpstream();
    guarded = createServer((_req, res) => res.writeHead(401, { "www-authenticate": "Bearer" }).end());
    await new Promise<void>((r) => guarded.listen(0, "127.0.0.1", r));
  });
  afterAll(async () => {
    await upstream?.close();
    await new Promise((r) => guarded?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the CLI without blocking this process: the upstreams it probes live here. */
  const doctor = (config: string) => runDoctor(dir, config, { PATH: process.env.PATH });

  it("names each problem on its own line and exits 1", async () => {
    const dead = `http://127.0.0.1:${await freePort()}/mcp`;
    mkdirSync(join(dir, "bin"), { recursive: true });
    writeFileSync(join(dir, "bin", "run.sh"), "#!/bin/sh\n", { mode: 0o755 });
    const guardedUrl = `http://127.0.0.1:${(guarded.address() as AddressInfo).port}/mcp`;
    const { status, lines } = await doctor(`
public_url: http://gateway.example.com
data_dir: ${join(dir, "data")}
services:
  echo: { url: "${upstream.url}" }
  dead: { url: "${dead}" }
  guarded: { url: "${guardedUrl}" }
  ghost: { command: /nonexistent/mcp-server }
  script: { command: node, args: [/nonexistent/server.js] }
  local: { command: node, args: [--version] }
  relative: { command: ./run.sh, cwd: "${join(dir, "bin")}" }
  off: { url: "${dead}", enabled: false }
`);
    expect(status).toBe(1);
    expect(lines.get("config")).toMatch(/^ok .*gateway\.yaml$/);
    expect(lines.get("public_url")).toMatch(/^warn http:\/\/gateway\.example\.com\/ is plain http/);
    expect(lines.get("store")).toMatch(/^ok sqlite .*gateway\.db$/);
    expect(lines.get("login")).toBe("ok Local account");
    expect(lines.get("service echo")).toBe(`ok ${upstream.url} answers initialize`);
    expect(lines.get("service dead")).toBe(`fail ${dead}: ECONNREFUSED`);
    expect(lines.get("service guarded")).toMatch(/^warn .* answers 401: it wants credentials of its own/);
    expect(lines.get("service ghost")).toBe("fail command not found: /nonexistent/mcp-server");
    expect(lines.get("service script")).toBe(
      "fail node would run /nonexistent/server.js, which does not exist",
    );
    expect(lines.get("service local")).toMatch(/^ok runs \/.*node --version$/);
    expect(lines.get("service relative")).toBe(`ok runs ${join(dir, "bin", "run.sh")}`);
    expect(lines.get("service off")).toBe("ok disabled");
  });

  it("exits 0 when everything answers", async () => {
    const { status, lines, stderr } = await doctor(`
data_dir: ${join(dir, "data")}
services:
  echo: { url: "${upstream.url}" }
`);
    expect(stderr).toBe("");
    expect(status).toBe(0);
    expect([...lines.values()].every((l) => l.startsWith("ok "))).toBe(true);
    expect(lines.get("public_url")).toBe("ok http://localhost:8080/");
  });

  it("reads an OIDC issuer's discovery document, and fails when it cannot", async () => {
    const op = await startOidcProvider();
    const oidc = (issuer: string) => `
data_dir: ${join(dir, "data")}
idp: { type: oidc, oidc: { issuer: "${issuer}", client_id: ${op.clientId}, client_secret: ${op.clientSecret} } }
`;
    try {
      const good = await doctor(oidc(op.issuer));
      expect(good.lines.get("login")).toBe(`ok ${new URL(op.issuer).host}`);
      expect(op.requests.some((r) => r.includes("/.well-known/openid-configuration"))).toBe(true);
      const gone = await doctor(oidc(`http://127.0.0.1:${await freePort()}`));
      expect(gone.status).toBe(1);
      expect(gone.lines.get("login")).toMatch(/^fail /);
    } finally {
      await op.stop();
    }
  });

  it("fails on a store it cannot reach", async () => {
    const { status, lines } = await doctor(`
data_dir: ${join(dir, "data")}
store: { type: redis, redis: { url: "redis://127.0.0.1:${await freePort()}" } }
`);
    expect(status).toBe(1);
    expect(lines.get("store")).toMatch(/^fail /);
    expect(lines.has("login")).toBe(false);
  });
});
