/**
 * The client side of the CLI as a person and a stdio-only MCP client meet it, all real:
 * a full gateway with real upstream MCP servers and a local user, the built CLI spawned as a
 * child process, the browser steps driven over HTTP up to the CLI's own loopback receiver.
 *
 * login -> credentials file -> token (cached, then refreshed near expiry) -> connect (tools,
 * notifications, a server-to-client request, a 401 refreshed on the fly) -> logout.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ListRootsRequestSchema, LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerEntry, StoredClient } from "../../src/client/credentials.js";

type CredentialEntry = ServerEntry & { code_verifier?: string };

import { addLocalUser, LOGIN, sleep } from "../oauth/helpers.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { Browser, followAuthorization, tokenRequest } from "../support/oauth-client.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { authorizationUrlOf, BIN, BUILT, cliEnv, runCli, startCli } from "./cli-process.js";
import { startRootsUpstream } from "./roots-upstream.js";

const INIT = { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } };

if (!BUILT && process.env.CI !== "true")
  console.warn("skipping test/client/cli.test.ts: run `npm run build` first");

describe.skipIf(!BUILT && process.env.CI !== "true")("mcp-gateway login / token / connect / logout", () => {
  let upstream: TestUpstream;
  let roots: Awaited<ReturnType<typeof startRootsUpstream>>;
  let gw: RunningGateway;
  let clientDir: string;
  let serviceUrl: string;
  let credentialsPath: string;

  /** The registration kept for the gateway (keyed by its issuer). */
  const clientOf = (): StoredClient | undefined =>
    (JSON.parse(readFileSync(credentialsPath, "utf8")) as { clients: Record<string, StoredClient> }).clients[
      gw.url
    ];
  const entry = (): CredentialEntry | undefined =>
    (JSON.parse(readFileSync(credentialsPath, "utf8")) as { servers: Record<string, CredentialEntry> })
      .servers[serviceUrl];
  const editEntry = (change: (e: CredentialEntry) => void) => {
    const file = JSON.parse(readFileSync(credentialsPath, "utf8")) as {
      servers: Record<string, CredentialEntry>;
    };
    change(file.servers[serviceUrl] as CredentialEntry);
    writeFileSync(credentialsPath, JSON.stringify(file));
  };

  /** Spawns `login`, drives the browser through the gateway's pages and back to the CLI. */
  async function loginThroughBrowser(url: string, dir: string) {
    const run = startCli(["login", url, "--no-browser", "--timeout", "20s"], dir);
    const authorizationUrl = await authorizationUrlOf(run);
    const browser = new Browser();
    const back = await followAuthorization(gw.url, browser, authorizationUrl.toString(), LOGIN);
    // The browser itself goes to the loopback receiver, so the CLI gets the code.
    const landing = await browser.get(back.toString());
    return { run, authorizationUrl, back, landing, code: await run.exited };
  }

  beforeAll(async () => {
    upstream = await startUpstream();
    roots = await startRootsUpstream();
    gw = await startFullGateway({
      services: { notes: { url: upstream.url, scopes: ["notes:read"] }, roots: { url: roots.url } },
    });
    await addLocalUser(gw);
    clientDir = join(mkdtempSync(join(tmpdir(), "mcpgw-client-")), "creds");
    credentialsPath = join(clientDir, "credentials.json");
    serviceUrl = `${gw.url}/notes/mcp`;
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
    await upstream?.close();
    await roots?.close();
    if (clientDir) rmSync(join(clientDir, ".."), { recursive: true, force: true });
  });

  it("before any login, token and connect exit 1 and say to run login", async () => {
    const token = await runCli(["token", serviceUrl], clientDir);
    expect(token.code).toBe(1);
    expect(token.stdout).toBe("");
    expect(token.stderr).toContain(`run: mcp-gateway login ${serviceUrl}`);

    const connect = await runCli(["connect", serviceUrl], clientDir);
    expect(connect.code).toBe(1);
    expect(connect.stdout).toBe("");
    expect(connect.stderr).toContain(`mcp-gateway login ${serviceUrl}`);
  });

  it("login runs the browser flow to the loopback receiver and caches the tokens, 0600", async () => {
    const { run, authorizationUrl, back, landing, code } = await loginThroughBrowser(serviceUrl, clientDir);
    expect(code).toBe(0);
    expect(run.stdout()).toBe(`logged in to ${serviceUrl} as ${LOGIN.username}\n`);

    // What the SDK's auth() sent: PKCE S256, the service as resource, a loopback redirect URI.
    expect(`${authorizationUrl.origin}${authorizationUrl.pathname}`).toBe(`${gw.url}/authorize`);
    expect(authorizationUrl.searchParams.get("code_challenge_method")).toBe("S256");
    expect(authorizationUrl.searchParams.get("resource")).toBe(serviceUrl);
    expect(authorizationUrl.searchParams.get("redirect_uri")).toMatch(
      /^http:\/\/127\.0\.0\.1:\d+\/callback$/,
    );
    expect(back.searchParams.get("state")).toBe(authorizationUrl.searchParams.get("state"));
    expect(landing.status).toBe(200);
    expect(await landing.text()).toContain("You are logged in");

    expect(statSync(clientDir).mode & 0o777).toBe(0o700);
    expect(statSync(credentialsPath).mode & 0o777).toBe(0o600);
    const text = readFileSync(credentialsPath, "utf8");
    const cached = entry() as CredentialEntry;
    expect(clientOf()?.client_id).toBeTruthy();
    expect(cached.issuer).toBe(gw.url);
    expect(cached.tokens?.access_token).toBeTruthy();
    expect(cached.tokens?.refresh_token).toBeTruthy();
    expect(cached.tokens?.expires_at).toBeGreaterThan(Date.now() + 60_000);
    // Only the tokens it must keep: no verifier after the login, no password; the registration
    // access token is kept, for logout to delete the registration with (RFC 7592).
    expect(cached.code_verifier).toBeUndefined();
    expect(text).not.toContain("code_verifier");
    expect(clientOf()?.registration_access_token).toBeTruthy();
    expect(text).not.toContain(LOGIN.password);
    expect(text).not.toContain(back.searchParams.get("code") as string);
  });

  it("token prints the cached JWT for the service, then refreshes it within 60 s of expiry", async () => {
    const first = await runCli(["token", serviceUrl], clientDir);
    expect(first.code).toBe(0);
    const token = first.stdout.trim();
    expect(decodeJwt(token)).toMatchObject({ iss: gw.url, aud: serviceUrl, preferred_username: "alice" });
    expect(token).toBe(entry()?.tokens?.access_token);

    // Still valid for long: the same token, no refresh.
    const again = await runCli(["token", serviceUrl], clientDir);
    expect(again.stdout.trim()).toBe(token);

    const oldRefresh = entry()?.tokens?.refresh_token;
    editEntry((e) => {
      if (e.tokens) e.tokens.expires_at = Date.now() + 30_000;
    });
    const refreshed = await runCli(["token", serviceUrl], clientDir);
    expect(refreshed.code).toBe(0);
    const next = refreshed.stdout.trim();
    expect(next).not.toBe(token);
    expect(decodeJwt(next).aud).toBe(serviceUrl);
    expect(entry()?.tokens?.refresh_token).toBeTruthy();
    expect(entry()?.tokens?.refresh_token).not.toBe(oldRefresh);
    expect(entry()?.tokens?.expires_at).toBeGreaterThan(Date.now() + 60_000);
  });

  it("connect relays a stdio MCP client to the service: tools, calls, notifications", async () => {
    const client = new Client({ name: "stdio-only-client", version: "1.0.0" });
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, "connect", serviceUrl],
      env: cliEnv(clientDir),
      stderr: "pipe",
    });
    const logs: string[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      logs.push(String(n.params.data));
    });
    await client.connect(transport);
    try {
      expect(client.getServerVersion()?.name).toBe("test-upstream");
      const tools = await client.listTools();
      expect(tools.tools.map((t) => t.name)).toEqual(expect.arrayContaining(["whoami", "slow_stream"]));

      const whoami = await client.callTool({ name: "whoami" });
      const headers = JSON.parse((whoami.content as Array<{ text: string }>)[0]?.text ?? "{}") as Record<
        string,
        string
      >;
      expect(headers["x-user-name"]).toBe("alice");
      expect(headers.authorization).toBeUndefined();
      // The relay told the transport which protocol version was agreed.
      expect(headers["mcp-protocol-version"]).toBeTruthy();

      const slow = await client.callTool({ name: "slow_stream", arguments: { count: 3, delayMs: 10 } });
      expect((slow.content as Array<{ text: string }>)[0]?.text).toBe("done");
      expect(logs).toEqual(["tick 1", "tick 2", "tick 3"]);

      // A bad tool name comes back as the upstream's own JSON-RPC error, untouched.
      await expect(client.callTool({ name: "no_such_tool" })).resolves.toMatchObject({ isError: true });
    } finally {
      await client.close();
    }
  });

  it("connect relays server-to-client requests and refreshes on a 401 through the provider", async () => {
    const rootsUrl = `${gw.url}/roots/mcp`;
    const login = await loginThroughBrowser(rootsUrl, clientDir);
    expect(login.code).toBe(0);
    // A token the gateway rejects, though the cache thinks it is good for an hour.
    const file = JSON.parse(readFileSync(credentialsPath, "utf8")) as {
      servers: Record<string, CredentialEntry>;
    };
    const before = file.servers[rootsUrl]?.tokens as NonNullable<CredentialEntry["tokens"]>;
    before.access_token = `${before.access_token.slice(0, -4)}AAAA`;
    writeFileSync(credentialsPath, JSON.stringify(file));

    const client = new Client(
      { name: "stdio-only-client", version: "1.0.0" },
      { capabilities: { roots: {} } },
    );
    client.setRequestHandler(ListRootsRequestSchema, () => ({
      roots: [{ uri: "file:///work/project", name: "p" }],
    }));
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, "connect", rootsUrl],
      env: cliEnv(clientDir),
      stderr: "pipe",
    });
    await client.connect(transport);
    try {
      const result = await client.callTool({ name: "client_roots" });
      expect(JSON.parse((result.content as Array<{ text: string }>)[0]?.text ?? "[]")).toEqual([
        { uri: "file:///work/project", name: "p" },
      ]);
    } finally {
      await client.close();
    }
    const after = (
      JSON.parse(readFileSync(credentialsPath, "utf8")) as { servers: Record<string, CredentialEntry> }
    ).servers[rootsUrl]?.tokens;
    expect(after?.access_token).not.toBe(before.access_token);
    expect(after?.refresh_token).not.toBe(before.refresh_token);
    expect(decodeJwt(after?.access_token as string).aud).toBe(rootsUrl);
  });

  it("connect answers bad input on stdin with JSON-RPC errors and writes nothing but JSON-RPC", async () => {
    const child = spawn(process.execPath, [BIN, "connect", serviceUrl], {
      env: cliEnv(clientDir),
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const lines = async (n: number) => {
      for (let i = 0; i < 200 && out.split("\n").filter(Boolean).length < n; i++) await sleep(25);
      return out.split("\n").filter(Boolean);
    };
    child.stdin.write("this is not json\n");
    child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", id: 7, method: "initialize", params: INIT })}\n`);
    const got = await lines(2);
    const exited = new Promise((r) => child.once("close", r));
    child.stdin.end();
    await exited;
    const messages = got.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(messages).toContainEqual({
      jsonrpc: "2.0",
      id: null,
      error: { code: -32700, message: "Parse error" },
    });
    expect(messages.find((m) => m.id === 7)).toMatchObject({
      result: { serverInfo: { name: "test-upstream" } },
    });
    // Every stdout line was JSON-RPC (JSON.parse above would have thrown otherwise).
    expect(out.split("\n").filter(Boolean)).toHaveLength(2);
  });

  it("logout revokes the grant at the server and forgets it; token then fails", async () => {
    const cached = entry() as CredentialEntry;
    const refreshToken = cached.tokens?.refresh_token as string;
    const accessToken = cached.tokens?.access_token as string;

    const out = await runCli(["logout", serviceUrl], clientDir);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain(`logged out of ${serviceUrl} (tokens revoked)`);
    expect(out.stderr).toBe("");
    expect(entry()).toBeUndefined();

    const token = await runCli(["token", serviceUrl], clientDir);
    expect(token.code).toBe(1);
    expect(token.stderr).toContain(`run: mcp-gateway login ${serviceUrl}`);

    // The server side: the refresh token is dead, and so is the access token of that grant.
    const attempt = await tokenRequest(gw.url, {
      grant_type: "refresh_token",
      refresh_token: refreshToken,
      client_id: clientOf()?.client_id as string,
    });
    expect(attempt.status).toBe(400);
    expect(attempt.body.error).toBe("invalid_grant");
    const call = await fetch(serviceUrl, {
      method: "POST",
      headers: {
        authorization: `Bearer ${accessToken}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(call.status).toBe(401);

    // A second logout has nothing to do, and says so.
    const again = await runCli(["logout", serviceUrl], clientDir);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`not logged in to ${serviceUrl}`);
  });

  it("login refuses a redirect with the wrong state, and one carrying an error", async () => {
    const dir = join(clientDir, "..", "refusals");
    const wrong = startCli(["login", serviceUrl, "--no-browser"], dir);
    const redirect = new URL((await authorizationUrlOf(wrong)).searchParams.get("redirect_uri") as string);
    const forged = await fetch(`${redirect.href}?code=stolen&state=not-the-state`);
    expect(forged.status).toBe(400);
    expect(await wrong.exited).toBe(1);
    expect(wrong.stderr()).toContain("wrong state");

    const denied = startCli(["login", serviceUrl, "--no-browser"], dir);
    const url = await authorizationUrlOf(denied);
    const back = new URL(url.searchParams.get("redirect_uri") as string);
    back.searchParams.set("error", "access_denied");
    back.searchParams.set("error_description", "<b>no</b>");
    back.searchParams.set("state", url.searchParams.get("state") as string);
    // The gateway promises iss on every authorization response, errors included (RFC 9207).
    back.searchParams.set("iss", gw.url);
    const page = await fetch(back);
    expect(page.status).toBe(400);
    expect(await page.text()).toContain("&lt;b&gt;no&lt;/b&gt;");
    expect(await denied.exited).toBe(1);
    expect(denied.stderr()).toContain("access_denied");

    // Neither left tokens nor a verifier behind (the registration may stay for the next try).
    const file = JSON.parse(readFileSync(join(dir, "credentials.json"), "utf8")) as {
      servers: Record<string, CredentialEntry>;
    };
    expect(file.servers[serviceUrl]?.tokens).toBeUndefined();
    expect(file.servers[serviceUrl]?.code_verifier).toBeUndefined();
  });

  it("login gives up after --timeout when the browser never comes back", async () => {
    const run = await runCli(
      ["login", serviceUrl, "--no-browser", "--timeout", "1s"],
      join(clientDir, "..", "t"),
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("timed out after 1 s");
  });

  it("rejects a URL that is not one, and a bad --timeout, before doing anything", async () => {
    const bad = await runCli(["token", "not a url"], clientDir);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("not a URL");
    const timeout = await runCli(["login", serviceUrl, "--timeout", "soon"], clientDir);
    expect(timeout.code).toBe(1);
    expect(timeout.stderr).toContain("not a duration");
  });
});
