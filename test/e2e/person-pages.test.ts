/**
 * The pages a person uses beside the sign-in flow, in headless Chromium against the whole
 * gateway: the landing page signed out (no service list; a named service's snippets) and signed
 * in (their services only, URLs with a working copy button, the client snippets of `config
 * client`), /account listing a grant and revoking it
 * (its refresh token then refused at /token), and signing out (the old session cookie no longer
 * signs anyone in). Each page also on a phone-width screen. Forms without the session's CSRF
 * token or from another site are refused.
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalUsers } from "../../src/idp/local.js";
import { snippetFor } from "../../src/web/snippets.js";
import { addLocalUser, LOGIN } from "../oauth/helpers.js";
import { chromiumCheck, launchChromium } from "../support/chromium.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import {
  authorizeUrl,
  authorizeWithLocalLogin,
  Browser as HttpBrowser,
  pkcePair,
  REDIRECT_URI,
  registerClient,
  tokenRequest,
} from "../support/oauth-client.js";
import { type RedirectTarget, startRedirectTarget } from "../support/redirect-target.js";
import { signedInBrowser } from "../support/sign-in.js";

const SERVICES = {
  services: {
    notes: { url: "http://127.0.0.1:9/mcp", scopes: ["notes:read"] },
    // Only bob may use it: alice, signed in, does not see it.
    vault: { url: "http://127.0.0.1:9/mcp", allowed_users: ["bob"] },
  },
};
const PHONE = { width: 360, height: 740 };

const textOf = async (page: Page, selector = "main") =>
  ((await page.textContent(selector)) ?? "").replace(/\s+/g, " ");
/**
 * What the clipboard holds once it holds `want`, or after 20 s: polled, since the page's copy
 * writes asynchronously, and each read bounded, since page.evaluate waits without a timeout.
 */
async function clipboardAfterCopy(page: Page, want: string): Promise<string> {
  const until = Date.now() + 20_000;
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const unanswered = new Promise<string>((r) => {
      timer = setTimeout(() => r("(the clipboard did not answer)"), 5_000);
    });
    const text = await Promise.race([
      page.evaluate("navigator.clipboard.readText()") as Promise<string>,
      unanswered,
    ]).finally(() => clearTimeout(timer));
    if (text === want || Date.now() > until) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
}
const scrollWidth = (page: Page) =>
  bounded(
    "reading the page's scrollWidth",
    page.evaluate("document.documentElement.scrollWidth") as Promise<number>,
  );

/**
 * `promise`, or a rejection naming `what` after `ms`: for the steps with no timeout of their own
 * (page.evaluate, closing a page or a context), so that a hung browser fails the test with the
 * step it hung in, not vitest's bare timeout (the signed-in test hung twice on busy machines).
 */
async function bounded<T>(what: string, promise: Promise<T>, ms = 30_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, hung]).finally(() => clearTimeout(timer));
}

/** Names the step a long test is at, so that a hang anywhere in it says where (see `within`). */
class Steps {
  private at = "the start";

  step(name: string): void {
    this.at = name;
  }

  /** `body`, failing after `ms` with the last step named, before vitest's own timeout. */
  async within(ms: number, body: () => Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`still running after ${ms} ms, at: ${this.at}`)), ms);
    });
    await Promise.race([body(), hung]).finally(() => clearTimeout(timer));
  }
}

describe.skipIf(!chromiumCheck.available)("landing, account and sign-out pages in Chromium", () => {
  let gw: RunningGateway;
  let browser: Browser;
  let target: RedirectTarget;
  const logLines: string[] = [];

  beforeAll(async () => {
    gw = await startFullGateway({ ...SERVICES, log_level: "info" }, { logLines });
    await addLocalUser(gw);
    target = await startRedirectTarget();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await gw?.close({ wipe: true });
    await target?.close();
  });

  /** Signs in through a client's authorization in `context` and redeems the code: a grant with a refresh token. */
  async function signInThroughClient(context: BrowserContext, clientName: string) {
    const client = await registerClient(gw.url, { client_name: clientName, redirect_uris: [target.url] });
    const { verifier, challenge } = pkcePair();
    const resource = `${gw.url}/notes/mcp`;
    const page = await context.newPage();
    await page.goto(
      authorizeUrl(gw.url, {
        client_id: client.client_id,
        redirect_uri: target.url,
        code_challenge: challenge,
        resource,
      }),
    );
    if (await page.locator("#username").count()) {
      await page.fill("#username", LOGIN.username);
      await page.fill("#password", LOGIN.password);
      await Promise.all([page.waitForLoadState("load"), page.click("button[type=submit]")]);
    }
    const arrival = target.next();
    await page.click("#allow");
    const back = await arrival;
    await bounded("closing the consent page", page.close());
    const tokens = await tokenRequest(gw.url, {
      grant_type: "authorization_code",
      client_id: client.client_id,
      code: back.searchParams.get("code") as string,
      code_verifier: verifier,
      redirect_uri: target.url,
      resource,
    });
    expect(tokens.status).toBe(200);
    return { client, refreshToken: tokens.body.refresh_token as string };
  }

  it("shows the product and no service list to someone signed out, and a named service's snippets with copy buttons", async () => {
    const context = await browser.newContext();
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: gw.url });
    const page = await context.newPage();
    const refused: string[] = [];
    page.on("console", (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) refused.push(m.text());
    });
    try {
      const response = await page.goto(`${gw.url}/`);
      expect(response?.status()).toBe(200);
      const headers = response?.headers() ?? {};
      expect(headers["content-type"]).toMatch(/^text\/html/);
      // One script, by its hash: the script-src directive is that hash alone (no
      // 'unsafe-inline', no 'self'); no framing.
      expect(/script-src ([^;]*);/.exec(headers["content-security-policy"] ?? "")?.[1]).toMatch(
        /^'sha256-[A-Za-z0-9+/=]+'$/,
      );
      expect(headers["content-security-policy"]).toContain("frame-ancestors 'none'");
      expect(headers["x-frame-options"]).toBe("DENY");

      const main = await textOf(page);
      expect(main).toContain("puts a sign-in in front of MCP servers");
      expect(main).toContain("Sign in to see the services you may use");
      // Signed out, the services are not listed (not even by name).
      expect(await page.locator("#url-notes, #url-vault, #connect").count()).toBe(0);
      expect(main).not.toContain("vault");
      expect(await page.locator("#sign-in").count()).toBe(1);

      // A service named in the link (the endpoint page's) gets the same snippets
      // `mcp-gateway config client CLIENT URL` prints.
      await page.goto(`${gw.url}/?service=notes#connect`);
      await expect(page.textContent("#snippet-cursor")).resolves.toBe(
        snippetFor("cursor", `${gw.url}/notes/mcp`).text,
      );
      await expect(page.textContent("#snippet-claude-code")).resolves.toBe(
        snippetFor("claude-code", `${gw.url}/notes/mcp`).text,
      );
      await expect(page.textContent("#snippet-codex")).resolves.toBe(
        snippetFor("codex", `${gw.url}/notes/mcp`).text.trimEnd(),
      );

      // The copy script ran under the CSP (its buttons are shown) and copies the snippet.
      await page.click("summary:has-text('Cursor')");
      const copy = page.locator('button[data-copy="snippet-cursor"]');
      await expect(copy.isVisible()).resolves.toBe(true);
      await copy.click();
      const snippet = snippetFor("cursor", `${gw.url}/notes/mcp`).text;
      expect(await clipboardAfterCopy(page, snippet)).toBe(snippet);
      expect(refused).toEqual([]);

      // An unknown name shows no snippets.
      await page.goto(`${gw.url}/?service=nope`);
      expect(await page.locator("#connect").count()).toBe(0);

      await page.goto(`${gw.url}/?service=notes#connect`);
      await page.setViewportSize(PHONE);
      expect(await scrollWidth(page)).toBeLessThanOrEqual(PHONE.width);
    } finally {
      await context.close();
    }
  }, 120_000);

  it("signs in from the landing page with no application involved, and /account offers the same", async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${gw.url}/account`);
      expect(await textOf(page)).toContain("You are not signed in");
      await expect(page.getAttribute("#sign-in", "href")).resolves.toBe("/signin?next=/account");

      await page.goto(`${gw.url}/`);
      await Promise.all([page.waitForURL(/\/login\?request=/), page.click("#sign-in")]);
      expect(await textOf(page)).toContain("Sign in to see your services");
      await page.fill("#username", LOGIN.username);
      await page.fill("#password", LOGIN.password);
      await Promise.all([page.waitForURL(`${gw.url}/`), page.click("button[type=submit]")]);
      await expect(page.textContent("#user")).resolves.toBe(LOGIN.username);

      await page.goto(`${gw.url}/account`);
      await expect(page.textContent("#grants")).resolves.toContain("You have not allowed any application");
      // Signed in already: /signin goes straight on.
      await page.goto(`${gw.url}/signin?next=/`);
      expect(page.url()).toBe(`${gw.url}/`);
    } finally {
      await context.close();
    }
  }, 120_000);

  it("signed in: only the person's services; /account lists the grant and revokes it; sign-out ends the session", async () => {
    const steps = new Steps();
    await steps.within(170_000, async () => {
      steps.step("a browser context with clipboard permissions");
      const context = await bounded("a new browser context", browser.newContext());
      await bounded(
        "granting clipboard permissions",
        context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: gw.url }),
      );
      try {
        steps.step("signing in through a client");
        const { client, refreshToken } = await signInThroughClient(context, "Pages Test App");
        steps.step("the landing page, signed in");
        const page = await bounded("a new page", context.newPage());

        // The landing page, signed in: alice's services only, each URL with a copy button.
        await page.goto(`${gw.url}/`);
        await expect(page.textContent("#user")).resolves.toBe(LOGIN.username);
        await expect(page.inputValue("#url-notes")).resolves.toBe(`${gw.url}/notes/mcp`);
        expect(await page.locator("#url-vault").count()).toBe(0);
        steps.step("copying the service URL");
        await page.click('button[data-copy="url-notes"]');
        expect(await clipboardAfterCopy(page, `${gw.url}/notes/mcp`)).toBe(`${gw.url}/notes/mcp`);
        // Her first service's snippets, without asking; one she may not use is not offered.
        await expect(page.textContent("#snippet-vscode")).resolves.toBe(
          snippetFor("vscode", `${gw.url}/notes/mcp`).text,
        );
        await page.goto(`${gw.url}/?service=vault`);
        await expect(page.textContent("#connect")).resolves.toContain("notes");

        // The account page lists the grant.
        steps.step("the account page");
        await page.goto(`${gw.url}/account`);
        const grant = page.locator("#grants > li", { hasText: "Pages Test App" });
        expect(await grant.count()).toBe(1);
        const item = await grant.textContent();
        expect(item).toContain("notes");
        expect(item).toContain(client.client_id);
        expect(item).toMatch(/Allowed\s*\d{4}-\d\d-\d\d \d\d:\d\d UTC/);
        expect(item).toMatch(/Last used\s*\d{4}-\d\d-\d\d \d\d:\d\d UTC/);
        await page.setViewportSize(PHONE);
        expect(await scrollWidth(page)).toBeLessThanOrEqual(PHONE.width);

        // Revoke: the page says so, the grant is gone, and its refresh token is refused at /token.
        steps.step("revoking the grant");
        await Promise.all([
          page.waitForURL(/\/account\?revoked=1$/),
          grant.locator("button", { hasText: "Revoke" }).click(),
        ]);
        await expect(page.textContent("#notice")).resolves.toContain("Access revoked");
        expect(await page.locator("#grants > li", { hasText: "Pages Test App" }).count()).toBe(0);
        const refresh = await tokenRequest(gw.url, {
          grant_type: "refresh_token",
          client_id: client.client_id,
          refresh_token: refreshToken,
        });
        expect(refresh.status).toBe(400);
        expect(refresh.body.error).toBe("invalid_grant");
        // The audit trail says who ended it.
        const audit = logLines.map((l) => (JSON.parse(l) as { audit?: Record<string, unknown> }).audit);
        expect(audit).toContainEqual(expect.objectContaining({ type: "grant.revoked", reason: "account" }));

        // Sign out: GET asks, the button posts; the old cookie signs nobody in afterwards.
        steps.step("signing out");
        const cookie = (await bounded("the context's cookies", context.cookies(gw.url))).find(
          (c) => c.name === "mcpgw_session",
        );
        expect(cookie).toBeDefined();
        await page.goto(`${gw.url}/logout`);
        expect(await textOf(page)).toContain(`You are signed in as ${LOGIN.username}`);
        expect(await scrollWidth(page)).toBeLessThanOrEqual(PHONE.width);
        await Promise.all([page.waitForLoadState("load"), page.click("#sign-out")]);
        expect(await textOf(page)).toContain("You are signed out of the gateway");
        const replay = await fetch(`${gw.url}/account`, {
          headers: { cookie: `mcpgw_session=${cookie?.value}` },
        });
        expect(await replay.text()).toContain("You are not signed in");
        // And an authorization with it asks for a login again, instead of going to consent.
        const again = await fetch(
          authorizeUrl(gw.url, {
            client_id: client.client_id,
            redirect_uri: target.url,
            code_challenge: pkcePair().challenge,
          }),
          { headers: { cookie: `mcpgw_session=${cookie?.value}` }, redirect: "manual" },
        );
        expect(again.status).toBe(302);
        expect(again.headers.get("location")).toMatch(/^\/login\?request=/);
      } finally {
        steps.step("closing the browser context");
        await bounded("closing the browser context", context.close());
      }
    });
  }, 180_000);
});

describe("the forms of the person pages refuse what their own pages did not send", () => {
  let gw: RunningGateway;
  let target: RedirectTarget;

  beforeAll(async () => {
    gw = await startFullGateway(SERVICES);
    await addLocalUser(gw);
    target = await startRedirectTarget();
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
    await target?.close();
  });

  /** A signed-in HTTP browser, and the CSRF token its account page shows ("" if none). */
  async function signedIn() {
    const browser = await signedInBrowser(gw.url, {
      redirectUri: target.url,
      clientName: "Form Test",
      login: LOGIN,
    });
    const account = await (await browser.get(`${gw.url}/account`)).text();
    return { browser, csrf: /name="csrf" value="([^"]*)"/.exec(account)?.[1] ?? "" };
  }

  it("refuses a revoke or sign-out without the session's CSRF token, or posted from another site", async () => {
    const { browser, csrf } = await signedIn();
    expect(csrf).not.toBe("");
    const wrong = await browser.postForm(`${gw.url}/account/revoke`, { csrf: "x".repeat(43), grant: "abc" });
    expect(wrong.status).toBe(403);
    expect(await wrong.text()).toContain("CSRF check failed");
    const crossSite = await browser.postForm(
      `${gw.url}/logout`,
      { csrf },
      { origin: "https://evil.example", "sec-fetch-site": "cross-site" },
    );
    expect(crossSite.status).toBe(403);
    const noToken = await browser.postForm(`${gw.url}/logout`, {});
    expect(noToken.status).toBe(403);
    // Still signed in after all that.
    expect(await (await browser.get(`${gw.url}/account`)).text()).toContain("Applications that act as");
  });

  it("does not revoke a grant that is someone else's, and answers with a page", async () => {
    // bob signs in through a client and holds a grant with a refresh token.
    await new LocalUsers(gw.store).add("bob", "bob's long password", "bob@example.com");
    const bobsClient = await registerClient(gw.url, { client_name: "Bob's App" });
    const { verifier, challenge } = pkcePair();
    const back = await authorizeWithLocalLogin(
      gw.url,
      new HttpBrowser(),
      { client_id: bobsClient.client_id, code_challenge: challenge },
      { username: "bob", password: "bob's long password" },
    );
    const tokens = await tokenRequest(gw.url, {
      grant_type: "authorization_code",
      client_id: bobsClient.client_id,
      code: back.searchParams.get("code") as string,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
    });
    expect(tokens.status).toBe(200);
    const bobsGrant = (await gw.as.grants.listGrants()).find((g) => g.user.login === "bob");
    expect(bobsGrant).toBeDefined();

    // alice, signed in with her own valid token, names bob's grant.
    const { browser, csrf } = await signedIn();
    const res = await browser.postForm(`${gw.url}/account/revoke`, { csrf, grant: bobsGrant?.sid as string });
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const still = await tokenRequest(gw.url, {
      grant_type: "refresh_token",
      client_id: bobsClient.client_id,
      refresh_token: tokens.body.refresh_token as string,
    });
    expect(still.status).toBe(200);
  });
});
