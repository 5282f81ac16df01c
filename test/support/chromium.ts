/**
 * Headless Chromium (Debian's, driven by playwright-core) for the gateway's pages: launched with
 * the flags this machine needs, and a sign-in that goes through the login form and the consent
 * page as a person does, starting from an authorization URL a client built.
 */
import { type Browser, chromium } from "playwright-core";
import { checkBinary } from "./binaries.js";

export const CHROMIUM = "/usr/bin/chromium";

/** Whether Chromium is here (a failure under CI=true when it is not). */
export const chromiumCheck = checkBinary(CHROMIUM);

/** Without the background-networking flags Chromium floods this machine's closed network. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * Opens `authorizationUrl` in a fresh browser context, signs in as `login` and allows access;
 * resolves with the URL the gateway sent the browser back to (the client's redirect URI, with
 * the code), once the browser has loaded it.
 */
export async function signInWithChromium(
  browser: Browser,
  authorizationUrl: string,
  login: { username: string; password: string },
): Promise<URL> {
  const gateway = new URL(authorizationUrl).origin;
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(authorizationUrl);
    if (await page.locator("#username").count()) {
      await page.fill("#username", login.username);
      await page.fill("#password", login.password);
      await Promise.all([page.waitForLoadState("load"), page.click("button[type=submit]")]);
    }
    const left = page.waitForURL((u) => u.origin !== gateway, { waitUntil: "load" });
    // A remembered consent goes straight back to the client; otherwise the person allows.
    if (new URL(page.url()).origin === gateway) {
      const allow = page.locator("#allow");
      if (!(await allow.count())) {
        const text = ((await page.textContent("body")) ?? "").replace(/\s+/g, " ").trim();
        throw new Error(`the gateway showed no consent page at ${page.url()}: ${text.slice(0, 400)}`);
      }
      await allow.click();
    }
    await left;
    return new URL(page.url());
  } finally {
    await context.close();
  }
}
