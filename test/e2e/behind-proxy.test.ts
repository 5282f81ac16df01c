/**
 * The topology most deployments use: a real Caddy or nginx, configured from the shipped
 * deploy/caddy/Caddyfile.gateway and deploy/nginx/gateway.conf, in front of the gateway's own
 * listener, the gateway run as a process by its CLI with `trust_proxy` set and `public_url` the
 * proxy's URL. Through each, real clients log in and call tools: the MCP SDK client driving
 * its own auth(), and mcp-remote (a stdio proxy that does the OAuth login; its browser step is
 * completed by following the URL it prints, as a person would, and calling its redirect).
 * Afterwards the gateway process is still alive; the login brake and the request log both saw
 * the real client's address (the one the proxy put in X-Forwarded-For), and a client that
 * forges X-Forwarded-For cannot change it when the hop it comes through is not trusted.
 *
 * The test client connects from 127.0.0.2 where it matters, so that its address differs from
 * the proxy's (127.0.0.1) and each address can be told apart.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { auth } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../../src/config/load.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { waitFor } from "../bridge/helpers.js";
import { checkBinary } from "../support/binaries.js";
import { accessTokenFor } from "../support/login.js";
import { BrowserProvider, connectMcpRemote } from "../support/mcp-clients.js";
import { INITIALIZE, MCP_HEADERS } from "../support/mcp-http.js";
import { shortcutTaken } from "../support/metrics.js";
import { authorizeUrl, formField, pkcePair, registerClient } from "../support/oauth-client.js";
import { CADDY, NGINX, type RunningProxy, startCaddy, startNginx } from "../support/proxies.js";
import { freePort, startUpstream, type TestUpstream } from "../support/upstream.js";
import { BIN, cleanEnv } from "./serve-process.js";

const BUILT = existsSync(resolve("dist/cli/main.js"));
const LOGIN = { username: "alice", password: "correct horse battery" };
/** Where the test client comes from when its address must differ from the proxy's. */
const CLIENT_ADDRESS = "127.0.0.2";
const FORGED = "203.0.113.66";

interface RunningCli {
  child: ChildProcess;
  /** stdout and stderr so far (JSON log lines and the banner). */
  output(): string;
  stop(): Promise<number | null>;
}

async function serve(dir: string, config: string): Promise<RunningCli> {
  const child = spawn(process.execPath, [BIN, "serve", "--config", config, "--no-builtins"], {
    cwd: dir,
    env: cleanEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  await waitFor(() => out.includes("listening on") || child.exitCode !== null, 20_000);
  if (child.exitCode !== null) throw new Error(`gateway exited ${child.exitCode}: ${out}`);
  return {
    child,
    output: () => out,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
      child.kill("SIGTERM");
      return exited;
    },
  };
}

/** A cookie-keeping browser whose connections leave from `localAddress`, sending `extra` headers. */
class AddressedBrowser {
  private readonly cookies = new Map<string, string>();
  private readonly agent: Agent;
  constructor(
    localAddress: string,
    private readonly extra: Record<string, string> = {},
  ) {
    this.agent = new Agent({ localAddress });
  }
  async send(url: string, form?: Record<string, string>) {
    const headers: Record<string, string> = { ...this.extra };
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    if (form) {
      // As a current browser posts a form to its own page's origin.
      headers["content-type"] = "application/x-www-form-urlencoded";
      headers.origin = new URL(url).origin;
      headers["sec-fetch-site"] = "same-origin";
    }
    const res = await request(url, {
      method: form ? "POST" : "GET",
      headers,
      body: form ? new URLSearchParams(form).toString() : undefined,
      dispatcher: this.agent,
    });
    for (const line of [res.headers["set-cookie"] ?? []].flat()) {
      const [pair] = line.split(";");
      const eq = pair?.indexOf("=") ?? -1;
      if (pair && eq > 0) this.cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return {
      status: res.statusCode,
      location: res.headers.location as string | undefined,
      text: await res.body.text(),
    };
  }
  close() {
    return this.agent.close();
  }
}

/**
 * One failed password login at `base` from `localAddress` (registration, /authorize, the
 * login form, a wrong password), with `extra` headers on the browser's requests.
 */
async function failLogin(base: string, localAddress: string, extra: Record<string, string> = {}) {
  const client = await registerClient(base);
  const browser = new AddressedBrowser(localAddress, extra);
  try {
    let page = await browser.send(
      authorizeUrl(base, { client_id: client.client_id, code_challenge: pkcePair().challenge }),
    );
    for (let hops = 0; page.status === 302 && hops < 3; hops++) {
      page = await browser.send(new URL(page.location ?? "", base).toString());
    }
    expect(page.text).toContain('action="/login"');
    const refused = await browser.send(`${base}/login`, {
      request: formField(page.text, "request"),
      csrf: formField(page.text, "csrf"),
      username: LOGIN.username,
      password: "wrong password",
    });
    expect(refused.status).toBe(401);
  } finally {
    await browser.close();
  }
}

function toolHeaders(result: unknown): Record<string, string> {
  const text = (result as { content: Array<{ text: string }> }).content[0]?.text ?? "{}";
  return JSON.parse(text) as Record<string, string>;
}

const VARIANTS = [
  { proxy: "nginx", binary: NGINX, start: startNginx, file: "nginx/gateway.conf", trust: "127.0.0.1" },
  { proxy: "Caddy", binary: CADDY, start: startCaddy, file: "caddy/Caddyfile.gateway", trust: "127.0.0.1" },
  { proxy: "nginx", binary: NGINX, start: startNginx, file: "nginx/gateway.conf", trust: true },
  { proxy: "Caddy", binary: CADDY, start: startCaddy, file: "caddy/Caddyfile.gateway", trust: 1 },
] as const;

for (const variant of VARIANTS) {
  const available = checkBinary(variant.binary).available;
  describe.skipIf(!available || (!BUILT && process.env.CI !== "true"))(
    `${variant.proxy} (${variant.file}) in front of the gateway, trust_proxy: ${JSON.stringify(variant.trust)}`,
    () => {
      let dir: string;
      let upstream: TestUpstream;
      let gateway: RunningCli;
      let proxy: RunningProxy;
      let base: string;
      let gatewayUrl: string;
      let dataFile: string;

      beforeAll(async () => {
        dir = mkdtempSync(join(tmpdir(), "mcpgw-behind-"));
        upstream = await startUpstream();
        const gatewayPort = await freePort();
        const proxyPort = await freePort();
        base = `http://127.0.0.1:${proxyPort}`;
        gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
        dataFile = join(dir, "data", "gateway.db");
        const config = join(dir, "gateway.yaml");
        writeFileSync(
          config,
          [
            `public_url: ${base}`,
            "host: 127.0.0.1",
            `port: ${gatewayPort}`,
            `trust_proxy: ${JSON.stringify(variant.trust)}`,
            `data_dir: ${join(dir, "data")}`,
            "log_level: info",
            // Verdicts stay cached for the whole file, however slow the machine: which lane
            // takes a repeated request then depends on the order alone.
            "tokens:",
            "  revocation_cache: 300",
            "services:",
            "  echo:",
            `    url: ${upstream.url}`,
            "",
          ].join("\n"),
        );
        const added = spawnSync(
          process.execPath,
          [BIN, "admin", "users", "add", LOGIN.username, "--password-stdin", "--config", config],
          { cwd: dir, env: cleanEnv(), input: `${LOGIN.password}\n`, encoding: "utf8" },
        );
        if (added.status !== 0) throw new Error(`admin users add failed: ${added.stderr}`);
        gateway = await serve(dir, config);
        proxy = await variant.start({ PORT: proxyPort, GATEWAY: gatewayUrl }, variant.file);
      });

      afterAll(async () => {
        await proxy?.close();
        await gateway?.stop();
        await upstream?.close();
        if (dir) rmSync(dir, { recursive: true, force: true });
      });

      const alive = () => {
        expect({
          exitCode: gateway.child.exitCode,
          output: gateway.child.exitCode === null ? "" : gateway.output(),
        }).toEqual({
          exitCode: null,
          output: "",
        });
      };

      it("the MCP SDK client logs in with its own auth() and calls a tool through the proxy", async () => {
        const serverUrl = `${base}/echo/mcp`;
        const provider = new BrowserProvider(base, LOGIN, "SDK behind a proxy");
        expect(await auth(provider, { serverUrl })).toBe("REDIRECT");
        const code = provider.callback?.searchParams.get("code");
        expect(code).toBeTruthy();
        expect(await auth(provider, { serverUrl, authorizationCode: code as string })).toBe("AUTHORIZED");

        const client = new Client({ name: "behind-proxy", version: "1.0.0" });
        const transport = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider });
        await client.connect(transport);
        const seen = toolHeaders(await client.callTool({ name: "whoami", arguments: {} }));
        expect(seen["x-user-name"]).toBe(LOGIN.username);
        // The gateway's own word on the client, from what the trusted proxy forwarded.
        expect(seen["x-forwarded-for"]).toBe("127.0.0.1");
        expect(seen["x-forwarded-host"]).toBe(new URL(base).host);
        await transport.terminateSession();
        await client.close();
        alive();
      });

      it("mcp-remote logs in (its browser step followed by the test) and calls a tool", async () => {
        const { client, log } = await connectMcpRemote({
          base,
          url: `${base}/echo/mcp`,
          dir,
          login: LOGIN,
          clientName: "mcp-remote-test",
        });
        try {
          const seen = toolHeaders(await client.callTool({ name: "whoami", arguments: {} }));
          expect(seen["x-user-name"]).toBe(LOGIN.username);
          expect(seen.authorization).toBeUndefined();
        } catch (e) {
          throw new Error(`${(e as Error).message}\nmcp-remote said:\n${log()}`);
        } finally {
          await client.close();
        }
        alive();
      });

      it("an MCP request on the route and then on the shortcut (cached verdict): both log and forward the client's own address", async () => {
        const { accessToken } = await accessTokenFor(base, [`${base}/echo/mcp`], LOGIN);
        const agent = new Agent({ localAddress: CLIENT_ADDRESS });
        const mark = gateway.output().length;
        const seenBefore = upstream.requests.length;
        const takenBefore = await shortcutTaken(gatewayUrl, "mcp");
        const initialize = async (at: string) => {
          const res = await request(`${at}/echo/mcp`, {
            method: "POST",
            headers: { ...MCP_HEADERS, authorization: `Bearer ${accessToken}`, "x-forwarded-for": FORGED },
            body: JSON.stringify(INITIALIZE),
            dispatcher: agent,
          });
          await res.body.dump();
          expect(res.statusCode).toBe(200);
        };
        // The first check of a token goes through fastify's route; the second, its verdict
        // cached, through the shortcut ahead of fastify (src/gateway/proxy-shortcut.ts).
        const sends = variant.trust === "127.0.0.1" ? [base, base, gatewayUrl, gatewayUrl] : [base, base];
        for (const at of sends) await initialize(at);
        await agent.close();
        // The gateway's own count says so: every request after the first took the shortcut,
        // through the proxy too.
        expect(await shortcutTaken(gatewayUrl, "mcp")).toBe(takenBefore + sends.length - 1);
        type Line = { reqId?: string; req?: { path?: string; ip?: string } };
        const lines = () =>
          gateway
            .output()
            .slice(mark)
            .split("\n")
            .filter((l) => l.startsWith("{"))
            .map((l) => JSON.parse(l) as Line)
            .filter((l) => l.req?.path === "/echo/mcp");
        await waitFor(() => lines().length >= sends.length, 10_000);
        // One line per request (the lanes' lines are alike: both carry a request id).
        expect(lines()).toHaveLength(sends.length);
        for (const line of lines()) expect(line.req?.ip).toBe(CLIENT_ADDRESS);
        expect(gateway.output().slice(mark)).not.toContain(FORGED);
        // What the upstream was told about the client, either way.
        const forwarded = upstream.requests.slice(seenBefore).map((r) => r.headers["x-forwarded-for"]);
        expect(forwarded).toEqual(sends.map(() => CLIENT_ADDRESS));
        alive();
      });

      it("the login brake, the request log and the audit events see the client's own address, not a forged one", async () => {
        await failLogin(base, CLIENT_ADDRESS, { "x-forwarded-for": FORGED, "x-real-ip": FORGED });
        // A refused MCP request with a token: an access.refused audit event.
        const agent = new Agent({ localAddress: CLIENT_ADDRESS });
        const refused = await request(`${base}/echo/mcp`, {
          method: "POST",
          headers: { ...MCP_HEADERS, authorization: "Bearer not-a-token", "x-forwarded-for": FORGED },
          body: JSON.stringify(INITIALIZE),
          dispatcher: agent,
        });
        await refused.body.dump();
        await agent.close();
        expect(refused.statusCode).toBe(401);
        let expected = 1;
        if (variant.trust === "127.0.0.1") {
          // Straight to the gateway, around the proxy: this peer is not trusted, so its
          // X-Forwarded-For is not read at all.
          await failLogin(gatewayUrl, CLIENT_ADDRESS, { "x-forwarded-for": FORGED });
          expected = 2;
        }
        // The brake's per-address counter of failed logins (STORAGE.md, rule login.per_address):
        // under the client's own address, and under no other.
        const store = new SqliteStore(dataFile);
        try {
          const counted = async (address: string) => {
            const window = validateConfig({}).rate_limits.login.per_address.window;
            const now = Math.floor(Date.now() / 1000);
            // This window and the one before, in case the test ran across the boundary.
            const starts = [now - (now % window), now - (now % window) - window];
            const counts = await store.getMany<number>(
              "rate",
              starts.map((start) => `login.per_address:${start}:${address}`),
            );
            return counts.reduce<number>((sum, n) => sum + Number(n ?? 0), 0);
          };
          expect({
            real: await counted(CLIENT_ADDRESS),
            forged: await counted(FORGED),
            proxyOwn: await counted("127.0.0.1"),
          }).toEqual({ real: expected, forged: 0, proxyOwn: 0 });
        } finally {
          await store.close();
        }
        const loginLines = () =>
          gateway
            .output()
            .split("\n")
            .filter((l) => l.includes('"path":"/login"') && l.includes('"statusCode":401'));
        // The log reaches this process through a pipe, a moment after the answer.
        await waitFor(() => loginLines().length >= expected, 5000);
        for (const line of loginLines()) expect(line).toContain(`"ip":"${CLIENT_ADDRESS}"`);
        const audited = () =>
          gateway
            .output()
            .split("\n")
            .filter((l) => l.includes('"type":"access.refused"'));
        await waitFor(() => audited().length > 0, 5000);
        for (const line of audited()) expect(line).toContain(`"ip":"${CLIENT_ADDRESS}"`);
        alive();
      });
    },
  );
}
