/**
 * A headless machine logs in with the device grant (RFC 8628), end to end: the device asks for
 * codes and polls /token as the RFC says, while real Chromium (Debian chromium + playwright-core)
 * opens the verification URI, signs in, types the code and consents; the device then calls an
 * MCP service through the gateway with its tokens. Also in Chromium: the link with the code
 * filled in (still confirmed, then denied), and wrong codes up to the 429.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalUsers } from "../../src/idp/local.js";
import { addLocalUser, LOGIN } from "../oauth/helpers.js";
import { chromiumCheck, launchChromium } from "../support/chromium.js";
import { pollUntilAnswered, registerDeviceClient, startDevice } from "../support/device.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { roomInBrakeWindow } from "../support/wait.js";

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** The brake test's user, so the main user's count stays clean. */
const GUESSER = { username: "guesser", password: "guesser's own password" };

/** Waits for `condition`, checking every 50 ms. */
async function until(condition: () => boolean, what: string, withinMs = 30_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!chromiumCheck.available)("device grant in headless Chromium", () => {
  let upstream: TestUpstream;
  let gw: RunningGateway;
  let browser: Browser;
  let shots: string;

  beforeAll(async () => {
    upstream = await startUpstream();
    gw = await startFullGateway({
      services: { notes: { url: upstream.url, scopes: ["notes:read"] } },
      // A quick device, so the test does not wait 5 s per poll.
      tokens: { device_poll_interval: 1 },
      rate_limits: { device: { per_user: { max: 3 } } },
    });
    await addLocalUser(gw);
    await new LocalUsers(gw.store).add(GUESSER.username, GUESSER.password);
    shots = mkdtempSync(join(tmpdir(), "mcpgw-device-shots-"));
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await gw?.close({ wipe: true });
    await upstream?.close();
    if (shots) rmSync(shots, { recursive: true, force: true });
  });

  /** Fills the login form the device page sent the browser to, and waits for the device page. */
  async function signIn(page: Page, login: { username: string; password: string }): Promise<void> {
    expect(new URL(page.url()).pathname).toBe("/login");
    await expect(page.textContent("main")).resolves.toContain("A device");
    await page.fill("#username", login.username);
    await page.fill("#password", login.password);
    await page.click("button[type=submit]");
    await page.waitForSelector("#user_code");
    expect(new URL(page.url()).pathname).toBe("/device");
  }

  it("logs a headless machine in: Chromium signs in, types the code and consents while the device polls, then the device calls the service", async () => {
    const client = await registerDeviceClient(gw.url, { client_name: "Build server" });
    const resource = `${gw.url}/notes/mcp`;
    const codes = await startDevice(gw.url, client, { resource });
    const device = pollUntilAnswered(gw.url, client, codes);
    await until(() => device.answers.includes("authorization_pending"), "the device's first poll");

    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(codes.verification_uri);
      await signIn(page, LOGIN);
      await expect(page.inputValue("#user_code")).resolves.toBe("");
      // Typed as a person might: lower case, a space for the dash.
      await page.fill("#user_code", codes.user_code.toLowerCase().replace("-", " "));
      const consentResponse = page.waitForResponse(
        (r) => r.url() === `${gw.url}/device` && r.request().method() === "POST",
      );
      await page.click("#continue");
      const consent = await consentResponse;
      expect(consent.status()).toBe(200);
      expect(consent.headers()["content-security-policy"]).toContain("frame-ancestors 'none'");
      expect(consent.headers()["x-frame-options"]).toBe("DENY");
      await page.waitForSelector("#allow");
      await expect(page.textContent("#client-name")).resolves.toBe("Build server");
      await expect(page.textContent("#user-code")).resolves.toBe(codes.user_code);
      await expect(page.textContent("main")).resolves.toContain("notes");

      const shot = join(shots, "device-consent.png");
      await page.screenshot({ path: shot, fullPage: true });
      const png = readFileSync(shot);
      expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);

      expect(device.answers.every((a) => a === "authorization_pending")).toBe(true);
      await page.click("#allow");
      await page.waitForSelector("#notice-title");
      await expect(page.textContent("#notice-title")).resolves.toBe("Device connected");
    } finally {
      await context.close();
    }

    const tokens = await device.done;
    expect(tokens.status).toBe(200);
    expect(device.answers[0]).toBe("authorization_pending");
    expect(device.answers.at(-1)).toBe("tokens");
    expect(tokens.body.refresh_token).toBeTruthy();

    // The device uses its token like any MCP client: through the gateway to the service.
    const mcp = new Client({ name: "headless-box", version: "1.0.0" });
    await mcp.connect(
      new StreamableHTTPClientTransport(new URL(resource), {
        requestInit: { headers: { authorization: `Bearer ${tokens.body.access_token}` } },
      }),
    );
    try {
      const result = await mcp.callTool({ name: "whoami", arguments: {} });
      const headers = JSON.parse((result.content as Array<{ text: string }>)[0]?.text ?? "{}") as Record<
        string,
        string
      >;
      expect(headers["x-user-name"]).toBe(LOGIN.username);
      expect(headers["x-auth-client-id"]).toBe(client.client_id);
      expect(headers.authorization).toBeUndefined();
    } finally {
      await mcp.close();
    }
  }, 120_000);

  it("fills the code in from verification_uri_complete but still asks to confirm it; a denial reaches the device as access_denied", async () => {
    const client = await registerDeviceClient(gw.url, { client_name: "Someone's box" });
    const codes = await startDevice(gw.url, client);
    const device = pollUntilAnswered(gw.url, client, codes);
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(codes.verification_uri_complete);
      await signIn(page, LOGIN);
      expect(page.url()).toBe(codes.verification_uri_complete);
      await expect(page.inputValue("#user_code")).resolves.toBe(codes.user_code);
      await expect(page.isVisible("#link-warning")).resolves.toBe(true);
      // Nothing is approved by opening the link.
      expect(device.answers.every((a) => a === "authorization_pending")).toBe(true);
      await page.click("#continue");
      await page.waitForSelector("#deny");
      await expect(page.textContent("#user-code")).resolves.toBe(codes.user_code);
      await expect(page.textContent("main")).resolves.toContain(
        "If someone sent you this code or link, deny",
      );
      await page.click("#deny");
      await page.waitForSelector("#notice-title");
      await expect(page.textContent("#notice-title")).resolves.toBe("Request denied");
    } finally {
      await context.close();
    }
    const answer = await device.done;
    expect(`${answer.status} ${answer.body.error}`).toBe("400 access_denied");
  }, 120_000);

  it("says a wrong code is wrong, and after too many answers 429 with the form again", async () => {
    // The four answers counted in one window of the brake (per user, 15 minutes by default).
    await roomInBrakeWindow(gw.config.rate_limits.device.per_user.window, 30);
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(`${gw.url}/device`);
      await signIn(page, GUESSER);
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        await page.fill("#user_code", "BBBB-CCCC");
        const response = page.waitForResponse(
          (r) => r.url() === `${gw.url}/device` && r.request().method() === "POST",
        );
        await page.click("#continue");
        statuses.push((await response).status());
        await page.waitForSelector("#user_code");
      }
      expect(statuses).toEqual([400, 400, 400, 429]);
      await expect(page.textContent("[role=alert]")).resolves.toContain("Too many wrong codes");
    } finally {
      await context.close();
    }
  }, 120_000);
});
