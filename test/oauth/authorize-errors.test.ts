/**
 * GET /authorize and the login/consent pages refusing bad requests: errors that can go back to
 * a verified redirect URI do (with `error`, `state` and `iss`); the others are a 400 page. The
 * consent form needs its CSRF token and the browser that started the request.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import {
  authorizeUrl,
  Browser,
  formField,
  pkcePair,
  REDIRECT_URI,
  type RegisteredClient,
  registerClient,
} from "../support/oauth-client.js";
import { addLocalUser, LOGIN, SERVICES } from "./helpers.js";

let gw: RunningGateway;
let client: RegisteredClient;

beforeAll(async () => {
  gw = await startFullGateway(SERVICES);
  await addLocalUser(gw);
  client = await registerClient(gw.url, { client_name: "Notes app" });
});
afterAll(async () => {
  await gw?.close({ wipe: true });
});

/** The redirect back to the client, asserting it goes to the registered URI with `iss`. */
function clientRedirect(res: Response): URLSearchParams {
  expect(res.status).toBe(302);
  const location = new URL(res.headers.get("location") ?? "");
  expect(`${location.origin}${location.pathname}`).toBe(REDIRECT_URI);
  expect(location.searchParams.get("iss")).toBe(gw.url);
  return location.searchParams;
}

/** A readable error page, and no redirect anywhere. */
async function errorPage(res: Response, status = 400): Promise<string> {
  expect(res.status).toBe(status);
  expect(res.headers.get("location")).toBeNull();
  expect(res.headers.get("content-type")).toMatch(/^text\/html/);
  expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
  return res.text();
}

/**
 * Starts an authorization in `browser` for `app` (a fresh client by default, so no remembered
 * consent skips the page) and logs in; returns the consent page and its form fields.
 */
async function reachConsent(
  browser: Browser,
  state = "s1",
  app?: RegisteredClient,
): Promise<{ request: string; csrf: string; html: string; headers: Headers }> {
  const target = app ?? (await registerClient(gw.url, { client_name: "Notes app" }));
  let res = await browser.get(
    authorizeUrl(gw.url, { client_id: target.client_id, code_challenge: pkcePair().challenge, state }),
  );
  expect(res.status).toBe(302);
  res = await browser.get(new URL(res.headers.get("location") as string, gw.url).toString());
  const login = await res.text();
  res = await browser.postForm(`${gw.url}/login`, {
    request: formField(login, "request"),
    csrf: formField(login, "csrf"),
    ...LOGIN,
  });
  expect(res.status).toBe(200);
  const html = await res.text();
  expect(html).toContain('action="/consent"');
  return { request: formField(html, "request"), csrf: formField(html, "csrf"), html, headers: res.headers };
}

describe("GET /authorize refusals", () => {
  const get = (params: Record<string, string | undefined>) =>
    new Browser().get(authorizeUrl(gw.url, { client_id: client.client_id, state: "st-42", ...params }));

  it("redirects a request without PKCE with invalid_request, state and iss", async () => {
    const p = clientRedirect(await get({ code_challenge: undefined, code_challenge_method: undefined }));
    expect(p.get("error")).toBe("invalid_request");
    expect(p.get("state")).toBe("st-42");
    expect(p.get("code")).toBeNull();
  });

  it("redirects code_challenge_method=plain (and a missing method) with invalid_request", async () => {
    const { verifier } = pkcePair();
    for (const method of ["plain", undefined]) {
      const p = clientRedirect(await get({ code_challenge: verifier, code_challenge_method: method }));
      expect(p.get("error"), String(method)).toBe("invalid_request");
      expect(p.get("state")).toBe("st-42");
    }
  });

  it("redirects an unsupported response_type with unsupported_response_type", async () => {
    const p = clientRedirect(await get({ code_challenge: pkcePair().challenge, response_type: "token" }));
    expect(p.get("error")).toBe("unsupported_response_type");
    expect(p.get("state")).toBe("st-42");
  });

  it("redirects an unknown resource with invalid_target", async () => {
    const p = clientRedirect(
      await get({ code_challenge: pkcePair().challenge, resource: `${gw.url}/nope/mcp` } as Record<
        string,
        string
      >),
    );
    expect(p.get("error")).toBe("invalid_target");
    expect(p.get("state")).toBe("st-42");
  });

  it("shows a page, never a redirect, for a redirect_uri that is not registered", async () => {
    for (const uri of [
      "https://evil.example/callback",
      "http://127.0.0.1:9999/callback/../other",
      "http://localhost.evil.com/callback",
    ]) {
      const html = await errorPage(await get({ code_challenge: pkcePair().challenge, redirect_uri: uri }));
      expect(html).toContain("Redirect address not registered");
    }
  });

  it("shows a page for an unknown client, a missing client_id and a missing redirect_uri", async () => {
    const challenge = pkcePair().challenge;
    await errorPage(await get({ client_id: "no-such-client", code_challenge: challenge }));
    await errorPage(
      await new Browser().get(`${gw.url}/authorize?response_type=code&code_challenge=${challenge}`),
    );
    await errorPage(await get({ code_challenge: challenge, redirect_uri: "" }));
  });

  it("accepts a loopback redirect_uri on another port (RFC 8252), and a repeated parameter is a page", async () => {
    const res = await get({
      code_challenge: pkcePair().challenge,
      redirect_uri: "http://127.0.0.1:4242/callback",
    });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toMatch(/^\/login\?request=/);
    const twice = `${authorizeUrl(gw.url, { client_id: client.client_id, code_challenge: pkcePair().challenge })}&state=a&state=b`;
    await errorPage(await new Browser().get(twice));
  });
});

describe("login and consent forms", () => {
  it("refuses a consent POST without or with a wrong CSRF token (403 page), then still accepts the right one", async () => {
    const browser = new Browser();
    const { request, csrf } = await reachConsent(browser);
    const none = await browser.postForm(`${gw.url}/consent`, { request, decision: "allow" });
    expect(await errorPage(none, 403)).toContain("CSRF");
    const wrong = await browser.postForm(`${gw.url}/consent`, {
      request,
      csrf: `${csrf.slice(0, -2)}xx`,
      decision: "allow",
    });
    expect(await errorPage(wrong, 403)).toContain("CSRF");
    const right = clientRedirect(
      await browser.postForm(`${gw.url}/consent`, { request, csrf, decision: "allow" }),
    );
    expect(right.get("code")).toBeTruthy();
    expect(right.get("state")).toBe("s1");
  });

  it("refuses a login POST without its CSRF token", async () => {
    const browser = new Browser();
    let res = await browser.get(
      authorizeUrl(gw.url, { client_id: client.client_id, code_challenge: pkcePair().challenge }),
    );
    res = await browser.get(new URL(res.headers.get("location") as string, gw.url).toString());
    const html = await res.text();
    const refused = await browser.postForm(`${gw.url}/login`, {
      request: formField(html, "request"),
      ...LOGIN,
    });
    expect(await errorPage(refused, 403)).toContain("CSRF");
  });

  it("binds the pending request to the browser that started it", async () => {
    const app = await registerClient(gw.url);
    const victim = new Browser();
    const { request, csrf } = await reachConsent(victim, "v", app);
    // Another browser, even logged in as the same user, cannot use the request id and CSRF token.
    const attacker = new Browser();
    await reachConsent(attacker, "a", app);
    await errorPage(await attacker.get(`${gw.url}/consent?request=${encodeURIComponent(request)}`));
    await errorPage(await attacker.postForm(`${gw.url}/consent`, { request, csrf, decision: "allow" }));
    await errorPage(await new Browser().get(`${gw.url}/login?request=${encodeURIComponent(request)}`));
    // The victim's own request is untouched.
    const back = clientRedirect(
      await victim.postForm(`${gw.url}/consent`, { request, csrf, decision: "allow" }),
    );
    expect(back.get("code")).toBeTruthy();
  });

  it("redirects a denied consent with access_denied, state and iss, and the request is then gone", async () => {
    const browser = new Browser();
    const { request, csrf } = await reachConsent(browser, "deny-me");
    const p = clientRedirect(
      await browser.postForm(`${gw.url}/consent`, { request, csrf, decision: "deny" }),
    );
    expect(p.get("error")).toBe("access_denied");
    expect(p.get("state")).toBe("deny-me");
    expect(p.get("code")).toBeNull();
    await errorPage(await browser.postForm(`${gw.url}/consent`, { request, csrf, decision: "allow" }));
  });

  it("shows the client's name and redirect host on the consent page, with anti-framing headers", async () => {
    const { html, headers } = await reachConsent(new Browser());
    expect(headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(headers.get("x-frame-options")).toBe("DENY");
    expect(headers.get("cache-control")).toBe("no-store");
    expect(html).toContain("Notes app");
    expect(html).toContain("127.0.0.1:9999");
  });

  it("answers a wrong password with the login page again (401) and no session", async () => {
    const browser = new Browser();
    let res = await browser.get(
      authorizeUrl(gw.url, { client_id: client.client_id, code_challenge: pkcePair().challenge }),
    );
    res = await browser.get(new URL(res.headers.get("location") as string, gw.url).toString());
    const login = await res.text();
    res = await browser.postForm(`${gw.url}/login`, {
      request: formField(login, "request"),
      csrf: formField(login, "csrf"),
      username: LOGIN.username,
      password: "wrong",
    });
    expect(res.status).toBe(401);
    expect(res.headers.getSetCookie().some((c) => c.startsWith("mcpgw_session="))).toBe(false);
    expect(await res.text()).toContain('action="/login"');
  });
});
