/**
 * The local-login flow driven in real headless Chromium (Debian `chromium` + playwright-core):
 * /authorize -> the login form -> the consent page (client name, redirect host, anti-framing
 * headers, a screenshot) -> Allow -> the client's loopback redirect URI, then the code exchange.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addLocalUser, LOGIN, SERVICES } from "../oauth/helpers.js";
import { chromiumCheck, launchChromium } from "../support/chromium.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { authorizeUrl, pkcePair, registerClient, tokenRequest } from "../support/oauth-client.js";
import { type RedirectTarget, startRedirectTarget } from "../support/redirect-target.js";

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

describe.skipIf(!chromiumCheck.available)("authorization in headless Chromium", () => {
  let gw: RunningGateway;
  let browser: Browser;
  let target: RedirectTarget;
  let shots: string;

  beforeAll(async () => {
    gw = await startFullGateway(SERVICES);
    await addLocalUser(gw);
    target = await startRedirectTarget();
    shots = mkdtempSync(join(tmpdir(), "mcpgw-shots-"));
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await gw?.close({ wipe: true });
    await target?.close();
    if (shots) rmSync(shots, { recursive: true, force: true });
  });

  it("logs in, shows the consent page, and returns a code to the client's loopback redirect URI", async () => {
    const client = await registerClient(gw.url, {
      client_name: "Chromium Test App",
      redirect_uris: [target.url],
    });
    const { verifier, challenge } = pkcePair();
    const resource = `${gw.url}/notes/mcp`;
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(
        authorizeUrl(gw.url, {
          client_id: client.client_id,
          redirect_uri: target.url,
          code_challenge: challenge,
          state: "chromium",
          resource,
        }),
      );
      expect(new URL(page.url()).pathname).toBe("/login");
      await expect(page.title()).resolves.toContain("Sign in");
      await page.fill("#username", LOGIN.username);
      await page.fill("#password", LOGIN.password);

      // The consent page is the answer to the login form's POST.
      const consentResponse = page.waitForResponse(
        (r) => r.url() === `${gw.url}/login` && r.request().method() === "POST",
      );
      await page.click("button[type=submit]");
      const consent = await consentResponse;
      expect(consent.status()).toBe(200);
      const headers = consent.headers();
      expect(headers["content-security-policy"]).toContain("frame-ancestors 'none'");
      expect(headers["x-frame-options"]).toBe("DENY");

      await page.waitForSelector("#allow");
      await expect(page.textContent("#client-name")).resolves.toBe("Chromium Test App");
      await expect(page.textContent("#redirect-host")).resolves.toBe(new URL(target.url).host);

      const shot = join(shots, "consent.png");
      await page.screenshot({ path: shot, fullPage: true });
      const png = readFileSync(shot);
      expect(png.length).toBeGreaterThan(1000);
      expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);

      const arrival = target.next();
      await page.click("#allow");
      const back = await arrival;
      expect(back.searchParams.get("state")).toBe("chromium");
      expect(back.searchParams.get("iss")).toBe(gw.url);
      await page.waitForURL((u) => u.toString().startsWith(target.url));

      const tokens = await tokenRequest(gw.url, {
        grant_type: "authorization_code",
        client_id: client.client_id,
        code: back.searchParams.get("code") as string,
        code_verifier: verifier,
        redirect_uri: target.url,
        resource,
      });
      expect(tokens.status).toBe(200);
      expect(tokens.body).toMatchObject({ token_type: "Bearer", scope: "notes:read notes:write" });
    } finally {
      await context.close();
    }
  });

  it("does not let another site frame the login and consent pages", async () => {
    const client = await registerClient(gw.url, { client_name: "Framed", redirect_uris: [target.url] });
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      // A hostile page on another origin frames the gateway's login page.
      const framer = createServer((_req, res) => {
        const src = authorizeUrl(gw.url, {
          client_id: client.client_id,
          redirect_uri: target.url,
          code_challenge: pkcePair().challenge,
        });
        res
          .writeHead(200, { "content-type": "text/html" })
          .end(`<iframe id="f" src="${src.replaceAll("&", "&amp;")}"></iframe>`);
      });
      await new Promise<void>((resolve) => framer.listen(0, "127.0.0.1", resolve));
      try {
        // Chromium reports the refusal on the console, naming the CSP directive.
        const blocked = page.waitForEvent("console", {
          predicate: (m) => /frame-ancestors|X-Frame-Options|Refused to (display|frame)/i.test(m.text()),
          timeout: 10_000,
        });
        await page.goto(`http://localhost:${(framer.address() as AddressInfo).port}/`);
        await blocked;
        const frame = page.frames().find((f) => f !== page.mainFrame());
        // The frame exists but the gateway's form never loaded in it.
        expect(await frame?.$("#username").catch(() => null)).toBeFalsy();
      } finally {
        await new Promise((r) => framer.close(r));
      }
    } finally {
      await context.close();
    }
  });

  it("lets a browser-based client on another origin discover, register and hit /token with fetch()", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    // An app page on another origin (localhost vs 127.0.0.1), like the MCP Inspector.
    const app = createServer((_req, res) =>
      res.writeHead(200, { "content-type": "text/html" }).end("<p>app</p>"),
    );
    await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
    try {
      await page.goto(`http://localhost:${(app.address() as AddressInfo).port}/`);
      const result = await page.evaluate(async (base) => {
        const meta = (await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json()) as Record<
          string,
          string
        >;
        const reg = await fetch(meta.registration_endpoint as string, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            redirect_uris: ["http://localhost:6274/oauth/callback"],
            token_endpoint_auth_method: "none",
          }),
        });
        const client = (await reg.json()) as { client_id: string };
        const token = await fetch(meta.token_endpoint as string, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", authorization: "Basic eDp5" },
          body: "grant_type=authorization_code&code=nope",
        });
        return {
          issuer: meta.issuer,
          registered: reg.status,
          clientId: client.client_id,
          tokenStatus: token.status,
          tokenError: ((await token.json()) as { error: string }).error,
          challenge: token.headers.get("www-authenticate"),
        };
      }, gw.url);
      expect(result).toMatchObject({
        issuer: gw.url,
        registered: 201,
        tokenStatus: 401,
        tokenError: "invalid_client",
      });
      expect(result.clientId).toBeTruthy();
      expect(result.challenge).toMatch(/^Basic /);
      // The pages a person uses are not readable cross-origin.
      const consentReadable = await page.evaluate(async (base) => {
        try {
          await fetch(`${base}/consent?request=x`);
          return true;
        } catch {
          return false;
        }
      }, gw.url);
      expect(consentReadable).toBe(false);
    } finally {
      await context.close();
      await new Promise((r) => app.close(r));
    }
  });
});
