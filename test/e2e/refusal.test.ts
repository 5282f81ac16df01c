/**
 * When the login provider vouches for someone the gateway's allowlist refuses, in Chromium
 * through the GitHub emulator: the page names the rule that refused (users, orgs, teams,
 * emails: not "not on the list of allowed users" for an org rule), offers another account, and
 * the client's redirect URI is told `access_denied` with that reason, so a waiting client (a CLI
 * login) ends instead of waiting out its timeout.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromiumCheck, launchChromium } from "../support/chromium.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { type GitHubEmulator, githubSettings, startGitHubEmulator } from "../support/github-emulator.js";
import { authorizeUrl, pkcePair, registerClient } from "../support/oauth-client.js";
import { type RedirectTarget, startRedirectTarget } from "../support/redirect-target.js";

const MALLORY = { id: 666, login: "mallory", email: "mallory@evil.example", orgs: ["evil-corp"] };
const SERVICES = { notes: { url: "http://127.0.0.1:9/mcp", scopes: ["notes:read"] } };

describe.skipIf(!chromiumCheck.available)("a login the allowlist refuses, in Chromium", () => {
  let emulator: GitHubEmulator;
  let browser: Browser;
  let target: RedirectTarget;
  const gateways: RunningGateway[] = [];

  beforeAll(async () => {
    emulator = await startGitHubEmulator({ user: MALLORY });
    target = await startRedirectTarget();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    for (const gw of gateways) await gw.close({ wipe: true });
    await target?.close();
    await emulator?.stop();
  });

  async function gatewayWith(allow: Record<string, string[]>): Promise<RunningGateway> {
    const gw = await startFullGateway({
      services: SERVICES,
      idp: {
        type: "github",
        github: githubSettings(emulator, allow),
      },
    });
    gateways.push(gw);
    return gw;
  }

  /** Starts a client's authorization in a fresh browser; resolves on the page the gateway stops at. */
  async function authorizeAs(gw: RunningGateway, state: string): Promise<Page> {
    const client = await registerClient(gw.url, { client_name: "Refused App", redirect_uris: [target.url] });
    const page = await (await browser.newContext()).newPage();
    const url = authorizeUrl(gw.url, {
      client_id: client.client_id,
      redirect_uri: target.url,
      code_challenge: pkcePair().challenge,
      state,
      resource: `${gw.url}/notes/mcp`,
    });
    const response = await page.goto(url);
    expect(response?.status()).toBe(403);
    return page;
  }

  const text = async (page: Page) => ((await page.textContent("main")) ?? "").replace(/\s+/g, " ");

  it("names the organisation rule, offers another account, and sends access_denied to the client", async () => {
    const gw = await gatewayWith({ allowed_orgs: ["acme"] });
    const page = await authorizeAs(gw, "org-state");
    try {
      const shown = await text(page);
      expect(shown).toContain("mallory is not a member of an allowed organisation");
      expect(shown).not.toContain("list of allowed users");
      await expect(page.locator("#another-account").getAttribute("href")).resolves.toMatch(
        /^\/login\?request=/,
      );
      // Nobody has to click: the page hands the refusal to the client by itself.
      const back = await target.next();
      expect(back.searchParams.get("error")).toBe("access_denied");
      expect(back.searchParams.get("error_description")).toContain(
        "mallory is not a member of an allowed organisation",
      );
      expect(back.searchParams.get("state")).toBe("org-state");
      expect(back.searchParams.get("iss")).toBe(gw.url);
      expect(back.searchParams.has("code")).toBe(false);
    } finally {
      await page.context().close();
    }
  }, 60_000);

  it("names each rule the person failed when several are configured, on a phone-width screen", async () => {
    const gw = await gatewayWith({
      allowed_users: ["alice"],
      allowed_teams: ["acme/core"],
      allowed_emails: ["@acme.example"],
    });
    const page = await authorizeAs(gw, "many");
    try {
      await page.setViewportSize({ width: 360, height: 740 });
      const shown = await text(page);
      expect(shown).toContain(
        "mallory is not on the list of allowed users, not in an allowed team, and not using an allowed email address",
      );
      // Fits the screen: nothing wider than the viewport.
      const width = await page.evaluate("document.documentElement.scrollWidth");
      expect(width).toBeLessThanOrEqual(360);
      // The other way back: the person goes on to the client at once.
      await page.click("#back-to-client");
      const back = await target.next();
      expect(back.searchParams.get("error")).toBe("access_denied");
      expect(back.searchParams.get("state")).toBe("many");
    } finally {
      await page.context().close();
    }
  }, 60_000);

  it("starts the sign-in again for another account", async () => {
    const gw = await gatewayWith({ allowed_users: ["octocat"] });
    const page = await authorizeAs(gw, "again");
    try {
      expect(await text(page)).toContain("mallory is not on the list of allowed users");
      emulator.setUser({ id: 583231, login: "octocat", email: "octocat@github.example" });
      await page.click("#another-account");
      await page.waitForSelector("#allow");
      expect(await text(page)).toContain("act as octocat");
    } finally {
      emulator.setUser(MALLORY);
      await page.context().close();
    }
  }, 60_000);

  it("refuses a sign-in to the gateway's own pages the same way, with no client to send back to", async () => {
    const gw = await gatewayWith({ allowed_users: ["octocat"] });
    const page = await (await browser.newContext()).newPage();
    try {
      const response = await page.goto(`${gw.url}/signin?next=/account`);
      expect(response?.status()).toBe(403);
      expect(await text(page)).toContain("mallory is not on the list of allowed users");
      expect(await page.locator("#back-to-client").count()).toBe(0);
      expect(await page.locator('meta[http-equiv="refresh"]').count()).toBe(0);
      // Another account that is allowed ends on the page the sign-in was for.
      emulator.setUser({ id: 583231, login: "octocat", email: "octocat@github.example" });
      await Promise.all([page.waitForURL(`${gw.url}/account`), page.click("#another-account")]);
      expect(await text(page)).toContain("Applications that act as octocat");
    } finally {
      emulator.setUser(MALLORY);
      await page.context().close();
    }
  }, 60_000);
});
