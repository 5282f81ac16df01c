/**
 * Real MCP clients from npm, straight to the gateway (no proxy in front), each logging in
 * through the gateway's pages in headless Chromium and then calling a tool of a real MCP
 * server behind it: the MCP SDK v1 client, the MCP SDK v2 client (the 2025 `legacy` sequence,
 * and `auto` negotiation, which reaches the 2026-07-28 era), mcp-remote (a stdio proxy that
 * runs its own OAuth login and prints the URL), and the MCP Inspector's CLI mode (which has no
 * OAuth of its own: it gets a bearer token from a real login, passed with --header).
 *
 * The upstream is the SDK v2 server behind `createMcpHandler`, which serves both eras and
 * records which one served each request.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Client as ClientV2,
  createPrivateKeyJwtAuth,
  StreamableHTTPClientTransport as TransportV2,
  UnauthorizedError as UnauthorizedV2,
} from "@modelcontextprotocol/client";
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as TransportV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { decodeJwt, exportJWK, generateKeyPair } from "jose";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { addLocalUser, LOGIN } from "../oauth/helpers.js";
import { makeCertificates, opensslAvailable, type TestCertificates } from "../support/certs.js";
import { chromiumCheck, launchChromium, signInWithChromium } from "../support/chromium.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { authorizeSdkV1, authorizeSdkV2, ChromiumProvider } from "../support/mcp-clients.js";
import { authorizeUrl, pkcePair, registerClient, tokenRequest } from "../support/oauth-client.js";
import { type RedirectTarget, startRedirectTarget } from "../support/redirect-target.js";
import { freePort } from "../support/upstream.js";
import { type BothErasUpstream, startBothErasUpstream } from "../support/upstream-v2.js";
import { BUILT, type ServeProcess, startServe } from "./serve-process.js";

const require = createRequire(import.meta.url);
const MCP_REMOTE = require.resolve("mcp-remote/dist/proxy.js");
const INSPECTOR_BUILD = join(require.resolve("@modelcontextprotocol/inspector-cli/package.json"), "../build");
const INSPECTOR = join(INSPECTOR_BUILD, "cli.js");

/** Each client starts processes and a browser; the machine is shared. */
const SLOW = 180_000;

/** The whoami tool's answer: what the upstream saw. */
function identity(result: unknown): Record<string, unknown> {
  const text = (result as { content: Array<{ type: string; text: string }> }).content[0]?.text ?? "{}";
  return JSON.parse(text) as Record<string, unknown>;
}

/** A child process's stderr and stdout so far, and a wait for a pattern in either. */
function watch(child: ChildProcess) {
  let stderr = "";
  let stdout = "";
  const waiters: Array<() => void> = [];
  const poke = () => {
    for (const w of waiters.splice(0)) w();
  };
  child.stderr?.on("data", (d) => {
    stderr += d;
    poke();
  });
  child.stdout?.on("data", (d) => {
    stdout += d;
    poke();
  });
  child.on("exit", poke);
  const until = async <T>(find: () => T | undefined, what: string): Promise<T> => {
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      if (child.exitCode !== null) throw new Error(`exited (${child.exitCode}) before ${what}:\n${stderr}`);
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  return { stderr: () => stderr, stdout: () => stdout, until };
}

/**
 * On a failed test, prints the gateway's log lines written during it (a client's "-32001" or
 * "fetch failed" says nothing of why: the gateway's line for the 502 does).
 */
function printLogOnFailure(
  onTestFailed: (handler: () => void) => void,
  lines: () => string[] | string,
): void {
  const before = lines();
  const from = before.length;
  onTestFailed(() => {
    const now = lines();
    const during = typeof now === "string" ? now.slice(from) : now.slice(from).join("");
    process.stderr.write(`gateway log (warn and above) during the failed test:\n${during || "(nothing)\n"}`);
  });
}

describe.skipIf(!chromiumCheck.available)("real MCP clients from npm, direct to the gateway", () => {
  let upstream: BothErasUpstream;
  let gw: RunningGateway;
  let browser: Browser;
  let target: RedirectTarget;
  let serviceUrl: string;
  /** The gateway's warn and error lines: a failed test prints those of its own run. */
  const logLines: string[] = [];

  beforeAll(async () => {
    upstream = await startBothErasUpstream();
    gw = await startFullGateway(
      { log_level: "warn", services: { notes: { url: upstream.url, scopes: ["notes:read"] } } },
      { logLines },
    );
    await addLocalUser(gw);
    browser = await launchChromium();
    target = await startRedirectTarget();
    serviceUrl = `${gw.url}/notes/mcp`;
  }, SLOW);
  afterAll(async () => {
    await browser?.close();
    await target?.close();
    await gw?.close({ wipe: true });
    await upstream?.close();
  });

  beforeEach(({ onTestFailed }) => printLogOnFailure(onTestFailed, () => logLines));

  /** The identity the upstream must see: alice, through the client that logged in, never the token. */
  const expectAlice = (seen: Record<string, unknown>, clientId: unknown) => {
    expect(seen["x-user-name"]).toBe("alice");
    expect(seen["x-auth-client-id"]).toBe(clientId);
    expect(seen.authorization).toBe(false);
  };

  it(
    "MCP SDK v1 client: 401 -> discovery, registration, login in Chromium, finishAuth, tool call",
    async () => {
      const provider = new ChromiumProvider(browser, target, "SDK v1 interop", LOGIN);
      const back = await authorizeSdkV1(serviceUrl, provider, target, "interop-v1");
      expect(back.searchParams.get("iss")).toBe(gw.url);
      expect(decodeJwt(provider.saved?.access_token as string).aud).toBe(serviceUrl);

      const client = new ClientV1({ name: "interop-v1", version: "1.0.0" });
      await client.connect(new TransportV1(new URL(serviceUrl), { authProvider: provider }));
      try {
        expectAlice(identity(await client.callTool({ name: "whoami" })), provider.info?.client_id);
      } finally {
        await client.close();
      }
    },
    SLOW,
  );

  it.each([
    ["legacy", "legacy", { mode: "legacy" as const }],
    ["auto", "modern", { mode: "auto" as const }],
  ])(
    "MCP SDK v2 client, %s negotiation: login in Chromium, then a tool call in the %s era",
    async (_mode, era, versionNegotiation) => {
      const provider = new ChromiumProvider(browser, target, `SDK v2 interop (${_mode})`, LOGIN);
      const connect = async () => {
        const client = new ClientV2({ name: "interop-v2", version: "2.0.0" }, { versionNegotiation });
        await client.connect(new TransportV2(new URL(serviceUrl), { authProvider: provider as never }));
        return client;
      };
      // The v2 client checks the RFC 9207 iss of the response itself.
      await authorizeSdkV2(serviceUrl, provider, target, connect);

      // It registered as a native app (SEP-837), which its loopback redirect needs.
      const registered = await gw.as.clients.get(provider.info?.client_id as string);
      expect(registered?.application_type).toBe("native");

      const erasBefore = upstream.eras.length;
      const client = await connect();
      try {
        const seen = identity(await client.callTool({ name: "whoami" }));
        expectAlice(seen, provider.info?.client_id);
        expect(seen.era).toBe(era);
        expect(client.getProtocolEra()).toBe(era);
        if (era === "modern") expect(client.getNegotiatedProtocolVersion()).toBe("2026-07-28");
        expect(upstream.eras.slice(erasBefore)).toContain(era);
      } finally {
        await client.close();
      }
    },
    SLOW,
  );

  it(
    "mcp-remote: prints the authorization URL, gets the code on its own callback, proxies stdio to the service",
    async () => {
      const configDir = mkdtempSync(join(tmpdir(), "mcpgw-mcp-remote-"));
      const callbackPort = await freePort();
      // BROWSER=true: the opener it runs (xdg-open) "opens" the URL by running `true`; Chromium
      // goes there instead, from the URL mcp-remote prints.
      const child = spawn(
        process.execPath,
        [MCP_REMOTE, serviceUrl, String(callbackPort), "--host", "127.0.0.1"],
        {
          env: { ...process.env, MCP_REMOTE_CONFIG_DIR: configDir, BROWSER: "true", DISPLAY: "" },
          stdio: ["pipe", "pipe", "pipe"],
        },
      );
      const out = watch(child);
      try {
        const url = await out.until(
          () => /Please authorize this client by visiting:\s+(\S+)/.exec(out.stderr())?.[1],
          "the authorization URL",
        );
        const back = await signInWithChromium(browser, url, LOGIN);
        expect(back.origin).toBe(`http://127.0.0.1:${callbackPort}`);
        await out.until(
          () => (/Proxy established/.test(out.stderr()) ? true : undefined),
          "the proxy to be up",
        );

        const send = (message: unknown) => child.stdin?.write(`${JSON.stringify(message)}\n`);
        const answer = (id: number) =>
          out.until(() => {
            for (const line of out.stdout().split("\n")) {
              if (!line.trim()) continue;
              const message = JSON.parse(line) as { id?: number; result?: unknown; error?: unknown };
              if (message.id === id) return message;
            }
            return undefined;
          }, `the answer to request ${id}`);
        send({
          jsonrpc: "2.0",
          id: 1,
          method: "initialize",
          params: {
            protocolVersion: "2025-06-18",
            capabilities: {},
            clientInfo: { name: "stdio-host", version: "1.0.0" },
          },
        });
        expect((await answer(1)).result).toBeTruthy();
        send({ jsonrpc: "2.0", method: "notifications/initialized" });
        send({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "whoami", arguments: {} } });
        const call = await answer(2);
        // mcp-remote answers -32001 for anything its transport gave up on; its stderr says what.
        expect(
          call.error,
          `${JSON.stringify(call.error)}\nmcp-remote stderr:\n${out.stderr().slice(-4000)}`,
        ).toBeUndefined();
        const seen = identity(call.result);
        expect(seen["x-user-name"]).toBe("alice");
        expect(seen.authorization).toBe(false);
      } finally {
        if (child.exitCode === null) {
          const exited = new Promise((resolve) => child.once("exit", resolve));
          child.kill("SIGTERM");
          await exited;
        }
        rmSync(configDir, { recursive: true, force: true });
      }
    },
    SLOW,
  );

  it(
    "MCP Inspector CLI: no OAuth of its own, so refused without a token; with a bearer token from a real login, calls the tool",
    async () => {
      const inspect = (extra: string[]) =>
        new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
          const child = spawn(
            process.execPath,
            [
              INSPECTOR,
              "--cli",
              serviceUrl,
              "--transport",
              "http",
              "--method",
              "tools/call",
              "--tool-name",
              "whoami",
              ...extra,
            ],
            // inspector-cli 1.0.3 looks for "../package.json" relative to the working directory but
            // imports it relative to its module: only its own build directory satisfies both.
            { stdio: ["ignore", "pipe", "pipe"], cwd: INSPECTOR_BUILD },
          );
          const out = watch(child);
          child.on("exit", (code) => resolve({ code, stdout: out.stdout(), stderr: out.stderr() }));
        });

      const refused = await inspect([]);
      expect(refused.code).not.toBe(0);
      expect(`${refused.stdout}${refused.stderr}`).toMatch(/Authentication required/);

      // A real login in Chromium for a registered client, and the code exchange.
      const client = await registerClient(gw.url, {
        client_name: "MCP Inspector",
        redirect_uris: [target.url],
      });
      const { verifier, challenge } = pkcePair();
      const back = await signInWithChromium(
        browser,
        authorizeUrl(gw.url, {
          client_id: client.client_id,
          redirect_uri: target.url,
          code_challenge: challenge,
          resource: serviceUrl,
        }),
        LOGIN,
      );
      await target.next();
      const tokens = await tokenRequest(gw.url, {
        grant_type: "authorization_code",
        client_id: client.client_id,
        code: back.searchParams.get("code") as string,
        code_verifier: verifier,
        redirect_uri: target.url,
        resource: serviceUrl,
      });
      expect(tokens.status).toBe(200);

      const called = await inspect(["--header", `Authorization: Bearer ${tokens.body.access_token}`]);
      expect(called.code, called.stderr).toBe(0);
      const seen = identity(JSON.parse(called.stdout));
      expectAlice(seen, client.client_id);
    },
    SLOW,
  );
});

/**
 * What ChatGPT does, done by the MCP SDK v2 client from npm: it presents a Client ID Metadata
 * Document (an https URL; the SDK accepts no other) that declares private_key_jwt, and signs
 * its token requests with createPrivateKeyJwtAuth (aud: the issuer). The document and its JWK
 * set are served over https by a private CA that the gateway process trusts
 * (NODE_EXTRA_CA_CERTS), on loopback (cimd.allow_private_addresses).
 */
const cimdSkip = (!chromiumCheck.available || !opensslAvailable() || !BUILT) && process.env.CI !== "true";

describe.skipIf(cimdSkip)("MCP SDK v2 client with a metadata document and private_key_jwt", () => {
  let certs: TestCertificates;
  let docs: HttpsServer;
  let upstream: BothErasUpstream;
  let gateway: ServeProcess;
  let browser: Browser;
  let target: RedirectTarget;
  let dir: string;
  const served = new Map<string, string>();

  beforeAll(async () => {
    certs = makeCertificates();
    docs = createHttpsServer(
      { cert: readFileSync(certs.serverCert), key: readFileSync(certs.serverKey) },
      (req, res) => {
        const body = served.get(req.url ?? "");
        if (!body) res.writeHead(404).end();
        else res.writeHead(200, { "content-type": "application/json" }).end(body);
      },
    );
    await new Promise<void>((resolve) => docs.listen(0, "127.0.0.1", resolve));
    upstream = await startBothErasUpstream();
    dir = mkdtempSync(join(tmpdir(), "mcpgw-interop-cimd-"));
    writeFileSync(
      join(dir, "gateway.yaml"),
      `log_level: warn\ncimd: { allow_private_addresses: true }\nservices:\n  notes: { url: "${upstream.url}" }\n`,
    );
    gateway = await startServe({
      cwd: dir,
      args: ["--no-builtins"],
      env: { NODE_EXTRA_CA_CERTS: certs.ca },
      timeoutMs: 60_000,
    });
    browser = await launchChromium();
    target = await startRedirectTarget();
  }, SLOW);
  beforeEach(({ onTestFailed }) => printLogOnFailure(onTestFailed, () => gateway?.stdout() ?? ""));
  afterAll(async () => {
    await browser?.close();
    await target?.close();
    await gateway?.stop();
    await upstream?.close();
    await new Promise((resolve) => docs?.close(resolve));
    certs?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(
    "registers nothing: the gateway fetches the document, the login runs in Chromium, the code is redeemed with a signed assertion, the tool answers",
    async () => {
      const docsBase = `https://127.0.0.1:${(docs.address() as AddressInfo).port}`;
      const clientId = `${docsBase}/oauth/client.json`;
      const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
      served.set(
        "/oauth/jwks.json",
        JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256", use: "sig" }] }),
      );
      served.set(
        "/oauth/client.json",
        JSON.stringify({
          client_id: clientId,
          client_name: "SDK v2 with a metadata document",
          redirect_uris: [target.url],
          grant_types: ["authorization_code", "refresh_token"],
          response_types: ["code"],
          token_endpoint_auth_method: "private_key_jwt",
          jwks_uri: `${docsBase}/oauth/jwks.json`,
        }),
      );
      const password = gateway.password as string;
      expect(password, "the first-run admin password").toBeTruthy();
      const login = { username: "admin", password };
      const provider = Object.assign(
        new ChromiumProvider(browser, target, "SDK v2 with a metadata document", LOGIN),
        {
          clientMetadataUrl: clientId,
          addClientAuthentication: createPrivateKeyJwtAuth({
            issuer: clientId,
            subject: clientId,
            privateKey: await exportJWK(privateKey),
            alg: "ES256",
          }),
          redirectToAuthorization: async (url: URL) => {
            await signInWithChromium(browser, url.toString(), login);
          },
        },
      );
      // The issuer is serve's default public_url, http://localhost:{port}; the resource follows it.
      const url = new URL(`http://localhost:${gateway.port}/notes/mcp`);
      const connect = async () => {
        const client = new ClientV2(
          { name: "interop-cimd", version: "2.0.0" },
          { versionNegotiation: { mode: "auto" } },
        );
        await client.connect(new TransportV2(url, { authProvider: provider as never }));
        return client;
      };
      await expect(connect()).rejects.toBeInstanceOf(UnauthorizedV2);
      expect(provider.info?.client_id).toBe(clientId);
      const back = await target.next();
      await new TransportV2(url, { authProvider: provider as never }).finishAuth(back.searchParams);
      expect(decodeJwt(provider.saved?.access_token as string).client_id).toBe(clientId);
      const client = await connect();
      try {
        const seen = identity(await client.callTool({ name: "whoami" }));
        expect(seen["x-user-name"]).toBe("admin");
        expect(seen["x-auth-client-id"]).toBe(clientId);
        expect(seen.era).toBe("modern");
      } finally {
        await client.close();
      }
    },
    SLOW,
  );
});
