/**
 * A standalone `mcp-gateway bridge --auth-token-file` (run as a process) behind a gateway whose
 * service has `url:` and `upstream_bearer_file:`: the gateway presents the bridge's secret, the
 * client never sees or sets it, and the gateway's identity headers make sessions per user.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../../src/config/load.js";
import { LocalUsers } from "../../src/idp/local.js";
import { diagnose } from "../../src/ops/doctor.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { accessTokenFor } from "../support/login.js";
import { everything, initializeRequest, post, startCliBridge } from "./helpers.js";

const ALICE = { username: "alice", password: "alice's long password" };
const BOB = { username: "bob", password: "bob's long password" };
/** The bridge's own secret, known to the gateway only. */
const SECRET = randomBytes(32).toString("base64url");

describe("a standalone bridge that requires a token, behind the gateway", () => {
  let dir: string;
  let bridge: { url: string; proc: ChildProcess };
  let gw: RunningGateway;
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "mcpgw-upstream-bearer-"));
    const tokenFile = join(dir, "bridge-token");
    writeFileSync(tokenFile, `${SECRET}\n`, { mode: 0o600 });
    bridge = await startCliBridge([
      "--port",
      "0",
      "--auth-token-file",
      tokenFile,
      "--",
      everything.command,
      ...everything.args,
    ]);
    gw = await startFullGateway({
      services: { remote: { url: bridge.url, upstream_bearer_file: tokenFile } },
    });
    const users = new LocalUsers(gw.store);
    await users.add(ALICE.username, ALICE.password);
    await users.add(BOB.username, BOB.password);
    const resource = [`${gw.url}/remote/mcp`];
    alice = (await accessTokenFor(gw.url, resource, ALICE)).accessToken;
    bob = (await accessTokenFor(gw.url, resource, BOB)).accessToken;
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
    if (bridge?.proc.exitCode === null) bridge.proc.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("the bridge refuses a direct request, and the gateway's token is not its secret", async () => {
    expect((await post(bridge.url, initializeRequest(1))).status).toBe(401);
    expect((await post(bridge.url, initializeRequest(1), { authorization: `Bearer ${alice}` })).status).toBe(
      401,
    );
  });

  it("the MCP SDK client reaches the bridge through the gateway with its own token", async () => {
    const client = new Client({ name: "behind-gateway", version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${gw.url}/remote/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${alice}` } },
      }),
    );
    try {
      const result = await client.callTool({ name: "echo", arguments: { message: "through the gateway" } });
      expect(JSON.stringify(result)).toContain("through the gateway");
    } finally {
      await client.close();
    }
  });

  it("a session of alice's is 404 with bob's token, and still alice's", async () => {
    const url = `${gw.url}/remote/mcp`;
    const as = (token: string, sid?: string) => ({
      authorization: `Bearer ${token}`,
      "mcp-protocol-version": "2025-06-18",
      ...(sid ? { "mcp-session-id": sid } : {}),
    });
    const init = await post(url, initializeRequest(1), as(alice));
    expect(init.status).toBe(200);
    await init.text();
    const sid = init.headers.get("mcp-session-id") as string;
    const list = { jsonrpc: "2.0", id: 2, method: "tools/list" };
    const stolen = await post(url, list, as(bob, sid));
    expect(stolen.status).toBe(404);
    await stolen.body?.cancel();
    const mine = await post(url, list, as(alice, sid));
    expect(mine.status).toBe(200);
    expect(await mine.text()).toContain("echo");
  });

  it("doctor probes it with the same secret, and says so when the secret is refused", async () => {
    const wrongFile = join(dir, "wrong-token");
    writeFileSync(wrongFile, `${randomBytes(32).toString("base64url")}\n`, { mode: 0o600 });
    const config = validateConfig({
      data_dir: join(dir, "doctor-data"),
      log_level: "silent",
      services: {
        right: { url: bridge.url, upstream_bearer_file: join(dir, "bridge-token") },
        wrong: { url: bridge.url, upstream_bearer_file: wrongFile },
        missing: { url: bridge.url, upstream_bearer_file: join(dir, "no-such-file") },
      },
    });
    const findings = new Map((await diagnose(config)).map((f) => [f.check, `${f.verdict} ${f.detail}`]));
    expect(findings.get("service right")).toMatch(/^ok .*answers initialize/);
    expect(findings.get("service wrong")).toMatch(
      /^warn .*answers 401 to the secret in upstream_bearer_file/,
    );
    expect(findings.get("service missing")).toMatch(
      /^fail services\.missing\.upstream_bearer_file: cannot read/,
    );
  });
});
