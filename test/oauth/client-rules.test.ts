/**
 * Rules that hold a client and a browser to what they registered or where they are, over real
 * HTTP against the whole gateway: each client authenticates only with its registered method;
 * introspection tells a client about its own tokens only (resource servers listed in
 * `introspection.allowed_clients` excepted); the forms a person posts must come from the
 * gateway's own pages; and on https the session cookies carry the `__Host-` prefix.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import {
  authorizeUrl,
  Browser,
  formField,
  formPost,
  pkcePair,
  REDIRECT_URI,
  registerClient,
  tokenRequest,
} from "../support/oauth-client.js";
import { freePort } from "../support/upstream.js";
import {
  addLocalUser,
  addResourceServers,
  basicOf,
  INTROSPECTION,
  LOGIN,
  obtainCode,
  obtainTokens,
  RESOURCE_SERVERS,
  SERVICES,
} from "./helpers.js";

let gw: RunningGateway;
beforeAll(async () => {
  gw = await startFullGateway({ ...SERVICES, ...INTROSPECTION });
  await addLocalUser(gw);
  await addResourceServers(gw);
});
afterAll(async () => {
  await gw?.close({ wipe: true });
});

type Method = "client_secret_basic" | "client_secret_post" | "none";
const METHODS: Method[] = ["client_secret_basic", "client_secret_post", "none"];

describe("client authentication is the registered method, and only that", () => {
  it.each(METHODS)(
    "a %s client is refused with every other method, then redeems with its own",
    async (registered) => {
      const client = await registerClient(gw.url, { token_endpoint_auth_method: registered });
      const code = await obtainCode(gw, client);
      const form = {
        grant_type: "authorization_code",
        code: code.code,
        code_verifier: code.verifier,
        redirect_uri: REDIRECT_URI,
      };
      // What each method sends; a public client has no secret, so it offers a made-up one.
      const secret = client.client_secret ?? "made-up secret";
      const attempts: Record<Method, () => ReturnType<typeof tokenRequest>> = {
        client_secret_basic: () => tokenRequest(gw.url, form, { id: client.client_id, secret }),
        client_secret_post: () =>
          tokenRequest(gw.url, { ...form, client_id: client.client_id, client_secret: secret }),
        none: () => tokenRequest(gw.url, { ...form, client_id: client.client_id }),
      };
      for (const other of METHODS.filter((m) => m !== registered)) {
        const res = await attempts[other]();
        expect(`${other}: ${res.status} ${res.body.error}`).toBe(`${other}: 401 invalid_client`);
      }
      // None of the refused attempts spent the code.
      const right = await attempts[registered]();
      expect(right.status).toBe(200);
    },
  );
});

describe("introspection answers a client about its own tokens only", () => {
  it("gives details to the token's client and to a listed resource server, active:false to anyone else", async () => {
    const owner = await registerClient(gw.url, { token_endpoint_auth_method: "client_secret_basic" });
    const stranger = await registerClient(gw.url, { token_endpoint_auth_method: "client_secret_basic" });
    const tokens = await obtainTokens(gw, owner);
    for (const token of [tokens.access_token, tokens.refresh_token]) {
      const seenBy = async (basic: { id: string; secret: string }) =>
        (await formPost(`${gw.url}/introspect`, { token }, basic)).body;
      const asStranger = await seenBy(basicOf(stranger));
      expect(asStranger).toEqual({ active: false });
      const asOwner = await seenBy(basicOf(owner));
      expect(asOwner).toMatchObject({ active: true, client_id: owner.client_id, username: LOGIN.username });
      const asResourceServer = await seenBy(RESOURCE_SERVERS.basic);
      expect(asResourceServer).toMatchObject({ active: true, client_id: owner.client_id });
    }
  });
});

/** The login page of a fresh authorization in `browser`, and its form fields. */
async function loginPage(browser: Browser, base = gw.url) {
  const client = await registerClient(base);
  let res = await browser.get(
    authorizeUrl(base, { client_id: client.client_id, code_challenge: pkcePair().challenge }),
  );
  expect(res.status).toBe(302);
  res = await browser.get(new URL(res.headers.get("location") as string, base).toString());
  const html = await res.text();
  return { request: formField(html, "request"), csrf: formField(html, "csrf") };
}

describe("forms a person posts come from the gateway's own pages", () => {
  const crossSite: Array<{ name: string; headers: Record<string, string> }> = [
    // A browser without Fetch Metadata (older Safari) is judged by its Origin.
    { name: "another site's Origin", headers: { origin: "https://evil.example", "sec-fetch-site": "" } },
    { name: "no Origin and no Fetch Metadata", headers: { origin: "", "sec-fetch-site": "" } },
    { name: "Sec-Fetch-Site cross-site (whatever Origin says)", headers: { "sec-fetch-site": "cross-site" } },
    { name: "Sec-Fetch-Site same-site (a sibling subdomain)", headers: { "sec-fetch-site": "same-site" } },
  ];

  it.each(crossSite)(
    "refuses a login POST with $name, and the sign-in goes on from the real page",
    async ({ headers }) => {
      const browser = new Browser();
      const fields = await loginPage(browser);
      const refused = await browser.postForm(`${gw.url}/login`, { ...fields, ...LOGIN }, headers);
      expect(refused.status).toBe(403);
      expect(refused.headers.get("content-type")).toMatch(/^text\/html/);
      expect(await refused.text()).toContain("not sent from one of this gateway");
      expect(refused.headers.getSetCookie().some((c) => c.includes("mcpgw_session="))).toBe(false);
      const accepted = await browser.postForm(
        `${gw.url}/login`,
        { ...fields, ...LOGIN },
        { "sec-fetch-site": "same-origin" },
      );
      expect(accepted.status).toBe(200);
      expect(await accepted.text()).toContain('action="/consent"');
    },
  );

  it.each(crossSite)("refuses a consent POST with $name", async ({ headers }) => {
    const browser = new Browser();
    const fields = await loginPage(browser);
    const consent = await (await browser.postForm(`${gw.url}/login`, { ...fields, ...LOGIN })).text();
    const form = {
      request: formField(consent, "request"),
      csrf: formField(consent, "csrf"),
      decision: "allow",
    };
    const refused = await browser.postForm(`${gw.url}/consent`, form, headers);
    expect(refused.status).toBe(403);
    expect(refused.headers.get("location")).toBeNull();
    const accepted = await browser.postForm(`${gw.url}/consent`, form);
    expect(accepted.status).toBe(302);
    expect(accepted.headers.get("location")).toMatch(/^http:\/\/127\.0\.0\.1:9999\/callback\?code=/);
  });
});

describe("cookies on an https issuer", () => {
  let tls: RunningGateway;
  beforeAll(async () => {
    // Listening on plain http as behind a TLS-terminating proxy; the issuer is https.
    const port = await freePort();
    tls = await startFullGateway({ ...SERVICES, public_url: `https://127.0.0.1:${port}` }, { port });
    await addLocalUser(tls);
  });
  afterAll(async () => {
    await tls?.close({ wipe: true });
  });

  it("carry the __Host- prefix and Secure, and no Domain", async () => {
    const browser = new Browser();
    const client = await registerClient(tls.url);
    const start = await browser.get(
      authorizeUrl(tls.url, { client_id: client.client_id, code_challenge: pkcePair().challenge }),
    );
    const browserCookie = start.headers.getSetCookie().find((c) => c.includes("mcpgw_browser="));
    expect(browserCookie).toMatch(/^__Host-mcpgw_browser=[^;]+; Path=\/; HttpOnly; SameSite=Lax; Secure$/);
    const page = await browser.get(new URL(start.headers.get("location") as string, tls.url).toString());
    const html = await page.text();
    const login = await browser.postForm(
      `${tls.url}/login`,
      { request: formField(html, "request"), csrf: formField(html, "csrf"), ...LOGIN },
      // Behind the TLS proxy the page's origin is the https issuer; judged by Origin alone here.
      { origin: new URL(tls.config.public_url).origin, "sec-fetch-site": "" },
    );
    expect(login.status).toBe(200);
    const session = login.headers.getSetCookie().find((c) => c.includes("mcpgw_session="));
    expect(session).toMatch(
      /^__Host-mcpgw_session=[^;]+; Path=\/; HttpOnly; SameSite=Lax; Secure; Max-Age=\d+$/,
    );
    expect(session).not.toMatch(/Domain=/i);
  });
});
