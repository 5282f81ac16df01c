/**
 * `mcp-gateway login URL --device` (RFC 8628) as a headless machine runs it: the built CLI as a
 * child process prints the verification URL and the code and waits, real Chromium signs in and
 * types the code, and the CLI ends logged in; `token` (which refreshes: access tokens here live
 * 30 s, under its 60 s margin) and an MCP call then use that login. Also: a machine that logged
 * in with a browser before keeps that registration and both logins refresh with their own
 * client; a denial or an expired code ends the CLI with a message; and the poller's pace after a
 * slow_down (the device login in-process, with its sleep recorded).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { decodeJwt } from "jose";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialStore, type ServerEntry, type StoredClient } from "../../src/client/credentials.js";
import { DEVICE_CODE_GRANT, deviceLogin } from "../../src/client/device-login.js";
import { devicePrompt } from "../../src/client/device-prompt.js";
import { addLocalUser, LOGIN } from "../oauth/helpers.js";
import { chromiumCheck, launchChromium } from "../support/chromium.js";
import { answerDevice, enterCode, openDevicePage } from "../support/device.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { Browser as FormBrowser, followAuthorization } from "../support/oauth-client.js";
import { SCRIPT, spawnInPty } from "../support/pty.js";
import { redisAvailable, startRedis } from "../support/redis.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { authorizationUrlOf, BIN, BUILT, type CliRun, cliEnv, runCli, startCli } from "./cli-process.js";

const USER_CODE_LINE = /^\s+([BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4})$/m;

interface CredentialsFile {
  clients: Record<string, StoredClient>;
  servers: Record<string, ServerEntry>;
}

/** Waits until the CLI has printed the page and the code, and returns them. */
async function promptOf(run: CliRun, timeoutMs = 30_000): Promise<{ page: string; code: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = run.stderr();
    const page = /^\s+(http\S+\/device)$/m.exec(text)?.[1];
    const code = USER_CODE_LINE.exec(text)?.[1];
    if (page && code && text.includes("Waiting for the sign-in")) return { page, code };
    if (run.child.exitCode !== null || Date.now() > deadline) throw new Error(`no device prompt: ${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

if (!BUILT && process.env.CI !== "true")
  console.warn("skipping test/client/device-login.test.ts: run `npm run build` first");

describe.skipIf((!BUILT || !chromiumCheck.available) && process.env.CI !== "true")(
  "mcp-gateway login --device",
  () => {
    let upstream: TestUpstream;
    let gw: RunningGateway;
    let browser: Browser;
    let root: string;
    let notesUrl: string;
    let filesUrl: string;

    const credentials = (dir: string): CredentialsFile =>
      JSON.parse(readFileSync(join(dir, "credentials.json"), "utf8")) as CredentialsFile;
    let dirs = 0;
    const newDir = () => join(root, `creds-${++dirs}`);

    beforeAll(async () => {
      upstream = await startUpstream();
      gw = await startFullGateway({
        services: {
          notes: { url: upstream.url, scopes: ["notes:read"] },
          files: { url: upstream.url, scopes: ["files:read"] },
        },
        tokens: { device_poll_interval: 1, access_ttl: 30 },
      });
      await addLocalUser(gw);
      notesUrl = `${gw.url}/notes/mcp`;
      filesUrl = `${gw.url}/files/mcp`;
      root = mkdtempSync(join(tmpdir(), "mcpgw-device-cli-"));
      browser = await launchChromium();
    });
    afterAll(async () => {
      await browser?.close();
      await gw?.close({ wipe: true });
      await upstream?.close();
      if (root) rmSync(root, { recursive: true, force: true });
    });

    /** Chromium does what the person does with the printed page and code. */
    async function approveInChromium(page: Page, verificationUri: string, userCode: string): Promise<void> {
      await page.goto(verificationUri);
      await page.fill("#username", LOGIN.username);
      await page.fill("#password", LOGIN.password);
      await page.click("button[type=submit]");
      await page.waitForSelector("#user_code");
      await page.fill("#user_code", userCode);
      await page.click("#continue");
      await page.waitForSelector("#allow");
      await expect(page.textContent("#user-code")).resolves.toBe(userCode);
      await page.click("#allow");
      await page.waitForSelector("#notice-title");
    }

    it("prints the URL and the code, waits while Chromium signs in and types it, then token and an MCP call use the login", async () => {
      const dir = newDir();
      const run = startCli(["login", notesUrl, "--device"], dir);
      const prompt = await promptOf(run);
      expect(prompt.page).toBe(`${gw.url}/device`);
      expect(run.stderr()).toContain(`${gw.url}/device?user_code=${prompt.code}`);
      // stderr is a pipe here, not a terminal: no QR code.
      expect(run.stderr()).not.toMatch(/[▀▄█]/);
      expect(run.child.exitCode).toBeNull();

      const context = await browser.newContext();
      try {
        await approveInChromium(await context.newPage(), prompt.page, prompt.code);
      } finally {
        await context.close();
      }
      expect(await run.exited).toBe(0);
      expect(run.stdout()).toBe(`logged in to ${notesUrl} as ${LOGIN.username}\n`);

      // The login's own registration is kept with the URL, and the tokens name it.
      const file = credentials(dir);
      const entry = file.servers[notesUrl] as ServerEntry;
      const own = entry.client as StoredClient & { grant_types?: string[] };
      expect(own.grant_types).toContain(DEVICE_CODE_GRANT);
      expect(entry.tokens?.client_id).toBe(own.client_id);
      expect(file.clients[gw.url]).toBeUndefined();
      expect(readFileSync(join(dir, "credentials.json"), "utf8")).not.toContain("registration_access_token");

      // `token` refreshes (30 s tokens) with that client, and the gateway accepts the result.
      const token = await runCli(["token", notesUrl], dir);
      expect(token.stderr).toBe("");
      expect(token.code).toBe(0);
      const accessToken = token.stdout.trim();
      expect(accessToken).not.toBe(entry.tokens?.access_token);
      expect(decodeJwt(accessToken)).toMatchObject({
        aud: notesUrl,
        client_id: own.client_id,
        preferred_username: "alice",
      });
      const mcp = new Client({ name: "headless", version: "1.0.0" });
      await mcp.connect(
        new StreamableHTTPClientTransport(new URL(notesUrl), {
          requestInit: { headers: { authorization: `Bearer ${accessToken}` } },
        }),
      );
      try {
        const result = await mcp.callTool({ name: "whoami", arguments: {} });
        expect((result.content as Array<{ text: string }>)[0]?.text).toContain('"x-user-name":"alice"');
      } finally {
        await mcp.close();
      }

      // `connect` relays a stdio MCP client on the same login.
      const relayed = new Client({ name: "stdio-behind-device-login", version: "1.0.0" });
      await relayed.connect(
        new StdioClientTransport({
          command: process.execPath,
          args: [BIN, "connect", notesUrl],
          env: cliEnv(dir),
          stderr: "pipe",
        }),
      );
      try {
        const whoami = await relayed.callTool({ name: "whoami", arguments: {} });
        const headers = JSON.parse((whoami.content as Array<{ text: string }>)[0]?.text ?? "{}") as Record<
          string,
          string
        >;
        expect(headers["x-user-name"]).toBe("alice");
        expect(headers["x-auth-client-id"]).toBe(own.client_id);
      } finally {
        await relayed.close();
      }
    }, 120_000);

    it.skipIf(!SCRIPT.available && process.env.CI !== "true")(
      "on a terminal, draws a QR code of the link with the code under the URL and the code, and logs in",
      async () => {
        const dir = newDir();
        const term = spawnInPty([process.execPath, BIN, "login", notesUrl, "--device"], {
          cwd: root,
          env: cliEnv(dir),
        });
        const exited = new Promise<number | null>((r) => term.child.once("close", (code) => r(code)));
        const deadline = Date.now() + 30_000;
        while (!term.output().includes("Waiting for the sign-in")) {
          if (term.child.exitCode !== null || Date.now() > deadline)
            throw new Error(`no device prompt on the terminal: ${term.output()}`);
          await new Promise((r) => setTimeout(r, 50));
        }
        const text = term.output();
        const code = USER_CODE_LINE.exec(text)?.[1];
        if (!code) throw new Error(`no user code on the terminal: ${text}`);
        expect(text).toContain(`  ${gw.url}/device\n`);
        const lines = text.split("\n");
        const qr = lines.filter((l) => /[▀▄█]/.test(l));
        // A QR code: a block of rows, all as wide, after the link it encodes.
        expect(qr.length).toBeGreaterThan(10);
        expect(new Set(qr.map((l) => [...l].length)).size).toBe(1);
        const link = lines.findIndex((l) => l.includes(`${gw.url}/device?user_code=${code}`));
        expect(link).toBeGreaterThan(-1);
        expect(lines.indexOf(qr[0] as string)).toBeGreaterThan(link);

        const person = new FormBrowser();
        const { csrf } = await openDevicePage(gw.url, person, `${gw.url}/device?user_code=${code}`, LOGIN);
        expect((await enterCode(gw.url, person, csrf, code)).status).toBe(200);
        expect((await answerDevice(gw.url, person, csrf, code, "allow")).status).toBe(200);
        expect(await exited).toBe(0);
        expect(term.output()).toContain(`logged in to ${notesUrl} as ${LOGIN.username}`);
        const token = await runCli(["token", notesUrl], dir);
        expect(`${token.code} ${token.stderr}`).toBe("0 ");
      },
      120_000,
    );

    it("keeps a browser login's registration for the issuer: each login refreshes with its own client", async () => {
      const dir = newDir();
      // First a browser login to one service ...
      const browserRun = startCli(["login", filesUrl, "--no-browser", "--timeout", "30s"], dir);
      const back = await followAuthorization(
        gw.url,
        new FormBrowser(),
        (await authorizationUrlOf(browserRun, 30_000)).toString(),
        LOGIN,
      );
      await fetch(back);
      expect(await browserRun.exited).toBe(0);
      const issuerClient = credentials(dir).clients[gw.url] as StoredClient;
      expect(issuerClient.client_id).toBeTruthy();

      // ... then a device login to another, approved by a person in another browser.
      const run = startCli(["login", notesUrl, "--device"], dir);
      const prompt = await promptOf(run);
      const person = new FormBrowser();
      const { csrf } = await openDevicePage(gw.url, person, prompt.page, LOGIN);
      expect((await enterCode(gw.url, person, csrf, prompt.code)).status).toBe(200);
      expect((await answerDevice(gw.url, person, csrf, prompt.code, "allow")).status).toBe(200);
      expect(await run.exited).toBe(0);

      const file = credentials(dir);
      expect(file.clients[gw.url]?.client_id).toBe(issuerClient.client_id);
      const deviceClient = file.servers[notesUrl]?.tokens?.client_id;
      expect(deviceClient).toBeTruthy();
      expect(deviceClient).not.toBe(issuerClient.client_id);
      // Both refresh (30 s tokens), each with the client its tokens were issued to: presenting
      // one client's refresh token with the other would end that grant.
      for (const [url, clientId] of [
        [filesUrl, issuerClient.client_id],
        [notesUrl, deviceClient],
        [filesUrl, issuerClient.client_id],
        [notesUrl, deviceClient],
      ] as const) {
        const token = await runCli(["token", url], dir);
        expect(`${token.code} ${token.stderr}`, url).toBe("0 ");
        expect(decodeJwt(token.stdout.trim()).client_id, url).toBe(clientId);
      }
    }, 120_000);

    it("exits 1 and says so when the person denies", async () => {
      const dir = newDir();
      const run = startCli(["login", notesUrl, "--device"], dir);
      const prompt = await promptOf(run);
      const person = new FormBrowser();
      const { csrf } = await openDevicePage(gw.url, person, `${prompt.page}?user_code=${prompt.code}`, LOGIN);
      expect((await answerDevice(gw.url, person, csrf, prompt.code, "deny")).status).toBe(200);
      expect(await run.exited).toBe(1);
      expect(run.stderr()).toContain("mcp-gateway login: the sign-in was denied");
      expect(run.stdout()).toBe("");
    }, 120_000);

    it.skipIf(!redisAvailable() && process.env.CI !== "true")(
      "keeps waiting through a store outage (503 temporarily_unavailable) and logs in once it is over",
      async () => {
        const redis = await startRedis({ persist: true });
        if (!redis) throw new Error("redis-server did not start");
        const onRedis = await startFullGateway(
          { services: { notes: { url: upstream.url } }, tokens: { device_poll_interval: 1 } },
          { redisUrl: redis.url },
        );
        try {
          await addLocalUser(onRedis);
          const url = `${onRedis.url}/notes/mcp`;
          const dir = newDir();
          const run = startCli(["login", url, "--device"], dir);
          const prompt = await promptOf(run);
          await redis.kill("SIGKILL");
          try {
            const deadline = Date.now() + 30_000;
            while (!run.stderr().includes("cannot answer right now")) {
              if (run.child.exitCode !== null || Date.now() > deadline)
                throw new Error(`the CLI did not keep waiting through the outage: ${run.stderr()}`);
              await new Promise((r) => setTimeout(r, 50));
            }
            expect(run.child.exitCode).toBeNull();
          } finally {
            await redis.start();
          }
          // The gateway reaches Redis again when its device page can start a sign-in.
          const back = Date.now() + 30_000;
          while ((await fetch(prompt.page, { redirect: "manual" })).status === 503) {
            if (Date.now() > back) throw new Error("the gateway did not reach Redis again");
            await new Promise((r) => setTimeout(r, 100));
          }
          const person = new FormBrowser();
          const { csrf } = await openDevicePage(onRedis.url, person, prompt.page, LOGIN);
          expect((await enterCode(onRedis.url, person, csrf, prompt.code)).status).toBe(200);
          expect((await answerDevice(onRedis.url, person, csrf, prompt.code, "allow")).status).toBe(200);
          expect(await run.exited).toBe(0);
          expect(run.stdout()).toBe(`logged in to ${url} as ${LOGIN.username}\n`);
          const token = await runCli(["token", url], dir);
          expect(`${token.code} ${token.stderr}`).toBe("0 ");
        } finally {
          await onRedis.close({ wipe: true });
          await redis.stop();
        }
      },
      120_000,
    );

    it("exits 1 and says so when nobody approves before the code expires", async () => {
      const shortLived = await startFullGateway({
        services: { notes: { url: upstream.url } },
        tokens: { device_poll_interval: 1, device_code_ttl: 2 },
      });
      try {
        const run = startCli(["login", `${shortLived.url}/notes/mcp`, "--device"], newDir());
        expect(await run.exited).toBe(1);
        expect(run.stderr()).toContain("expires in 2 seconds");
        expect(run.stderr()).toContain("mcp-gateway login: the code expired before the sign-in was approved");
      } finally {
        await shortLived.close({ wipe: true });
      }
    }, 120_000);

    it("polls 5 s more slowly after a slow_down, and keeps to it", async () => {
      const store = new CredentialStore(newDir());
      const sleeps: number[] = [];
      let code = "";
      let approve: () => void = () => undefined;
      const approved = new Promise<void>((resolve) => {
        approve = resolve;
      });
      const slowDowns: number[] = [];
      const login = deviceLogin(notesUrl, {
        store,
        onSlowDown: (seconds) => slowDowns.push(seconds),
        onCode: (prompt) => {
          code = prompt.userCode;
        },
        // The first two waits are cut short (a device polling too fast); later ones last until
        // the person has approved.
        sleep: async (ms) => {
          sleeps.push(ms);
          if (sleeps.length > 2) await approved;
        },
      });
      await new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (sleeps.length >= 3) {
            clearInterval(check);
            resolve();
          }
        }, 20);
      });
      expect(sleeps).toEqual([1000, 1000, 6000]);
      const person = new FormBrowser();
      const { csrf } = await openDevicePage(gw.url, person, `${gw.url}/device`, LOGIN);
      expect((await answerDevice(gw.url, person, csrf, code, "allow")).status).toBe(200);
      approve();
      const result = await login;
      expect(result.username).toBe("alice");
      expect(sleeps).toEqual([1000, 1000, 6000]);
      expect(slowDowns).toEqual([6]);
    }, 120_000);

    it("draws a QR code of the link with the code only when asked to (a terminal)", async () => {
      const prompt = {
        verificationUri: `${gw.url}/device`,
        verificationUriComplete: `${gw.url}/device?user_code=BCDF-GHJK`,
        userCode: "BCDF-GHJK",
        expiresIn: 600,
      };
      const plain = await devicePrompt(prompt, { qr: false });
      expect(plain).toContain("  BCDF-GHJK\n");
      expect(plain).toContain("expires in 10 minutes");
      expect(plain).not.toMatch(/[▀▄█]/);
      const withQr = await devicePrompt(prompt, { qr: true });
      expect(withQr.split("\n").filter((l) => /[▀▄█]/.test(l)).length).toBeGreaterThan(10);
    });
  },
);
