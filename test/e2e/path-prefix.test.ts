/**
 * The gateway behind a reverse proxy at a sub-path: `public_url: http://host/gw`, nginx's
 * `location /gw/ { proxy_pass http://gateway/; }` (the prefix stripped), and the RFC 8414 /
 * RFC 9728 path-inserted discovery URLs ending in `/gw` passed on unchanged: README's block. Every URL the
 * gateway emits must carry the prefix: the forms and links of its pages, its redirects, its
 * cookies' Path, its metadata and its challenges. Driven by real Chromium (a person) and the
 * MCP SDK v1 client (discovery, registration, login, a tool call) through the real nginx.
 */
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from "@modelcontextprotocol/client";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { decodeJwt } from "jose";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addLocalUser, LOGIN } from "../oauth/helpers.js";
import { checkBinary } from "../support/binaries.js";
import { chromiumCheck, launchChromium } from "../support/chromium.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { authorizeSdkV1, authorizeSdkV2, ChromiumProvider } from "../support/mcp-clients.js";
import { prefixNginxConf } from "../support/prefix-nginx.js";
import { NGINX, type RunningProxy, startNginxWith } from "../support/proxies.js";
import { type RedirectTarget, startRedirectTarget } from "../support/redirect-target.js";
import { freePort } from "../support/upstream.js";
import { type BothErasUpstream, startBothErasUpstream } from "../support/upstream-v2.js";

const SLOW = 180_000;
const nginxCheck = checkBinary(NGINX);

/** nginx with README's locations; every other path of the host is another application's. */
const PREFIX_CONF = prefixNginxConf();

/** Every link and form target on the page, resolved against the page's URL (as the browser will use them). */
async function targets(page: Page): Promise<string[]> {
  const script = `[...document.querySelectorAll("a[href]")].map((a) => a.href)
    .concat([...document.querySelectorAll("form")].map((f) => f.action))`;
  return (await page.evaluate(script)) as string[];
}

/** The upstream's whoami, called by an SDK client (v1 or v2), names alice; the client is closed either way. */
async function expectAliceThenClose(client: {
  callTool(call: { name: string }): Promise<unknown>;
  close(): Promise<void>;
}): Promise<void> {
  try {
    const result = (await client.callTool({ name: "whoami" })) as { content: Array<{ text: string }> };
    expect(JSON.parse(result.content[0]?.text ?? "{}")["x-user-name"]).toBe("alice");
  } finally {
    await client.close();
  }
}

describe.skipIf(!nginxCheck.available || !chromiumCheck.available)(
  "public_url with a path, behind nginx at /gw/",
  () => {
    let upstream: BothErasUpstream;
    let gw: RunningGateway;
    let proxy: RunningProxy;
    let browser: Browser;
    let target: RedirectTarget;
    let origin: string;
    let base: string;

    beforeAll(async () => {
      const port = await freePort();
      origin = `http://127.0.0.1:${port}`;
      base = `${origin}/gw`;
      upstream = await startBothErasUpstream();
      gw = await startFullGateway({
        public_url: `${base}/`,
        services: { notes: { url: upstream.url } },
      });
      await addLocalUser(gw);
      proxy = await startNginxWith(PREFIX_CONF, { PORT: port, GATEWAY: gw.url });
      browser = await launchChromium();
      target = await startRedirectTarget();
    }, SLOW);
    afterAll(async () => {
      await browser?.close();
      await target?.close();
      await proxy?.close();
      await gw?.close({ wipe: true });
      await upstream?.close();
    });

    /** Every link and form of the page at `path` (under the prefix) stays under the prefix. */
    const expectUnderPrefix = (urls: string[], where: string) => {
      expect(urls.length, where).toBeGreaterThan(0);
      // Links to other sites (the snippets' documentation) are not the gateway's.
      const own = urls.filter((u) => new URL(u).origin === origin);
      expect(own.length, where).toBeGreaterThan(0);
      for (const url of own) expect(url, `${where}: ${url}`).toMatch(new RegExp(`^${base}/`));
    };

    it(
      "the MCP SDK v1 client connects at the prefixed URL: discovery, registration, login and consent in Chromium, a tool call",
      async () => {
        const serviceUrl = `${base}/notes/mcp`;
        const provider = new ChromiumProvider(browser, target, "prefix test", LOGIN);
        const back = await authorizeSdkV1(serviceUrl, provider, target, "prefix-v1");
        expect(back.searchParams.get("iss")).toBe(base);
        const claims = decodeJwt(provider.saved?.access_token as string);
        expect(claims.aud).toBe(serviceUrl);
        expect(claims.iss).toBe(base);

        const client = new Client({ name: "prefix-v1", version: "1.0.0" });
        await client.connect(
          new StreamableHTTPClientTransport(new URL(serviceUrl), { authProvider: provider }),
        );
        await expectAliceThenClose(client);
      },
      SLOW,
    );

    it(
      "the MCP SDK v2 client (auto negotiation, the 2026-07-28 era) connects at the prefixed URL, checking the issuer strictly",
      async () => {
        const serviceUrl = `${base}/notes/mcp`;
        const provider = new ChromiumProvider(browser, target, "prefix test", LOGIN);
        const connect = async () => {
          const client = new ClientV2(
            { name: "prefix-v2", version: "2.0.0" },
            { versionNegotiation: { mode: "auto" } },
          );
          await client.connect(new TransportV2(new URL(serviceUrl), { authProvider: provider as never }));
          return client;
        };
        await authorizeSdkV2(serviceUrl, provider, target, connect);
        expect(decodeJwt(provider.saved?.access_token as string).iss).toBe(base);
        const client = await connect();
        await expectAliceThenClose(client);
      },
      SLOW,
    );

    it(
      "a person's pages: sign in from the landing page, the account and sign-out pages, every link and form under /gw/",
      async () => {
        const context = await browser.newContext();
        try {
          const page = await context.newPage();
          await page.goto(`${base}/`);
          expectUnderPrefix(await targets(page), "landing, signed out");
          await Promise.all([page.waitForURL(/\/gw\/login\?/), page.click("#sign-in")]);
          expectUnderPrefix(await targets(page), "login page");
          await page.fill("#username", LOGIN.username);
          await page.fill("#password", LOGIN.password);
          await Promise.all([page.waitForURL(`${base}/`), page.click("button[type=submit]")]);
          expect(await page.textContent("#user")).toBe("alice");
          expectUnderPrefix(await targets(page), "landing, signed in");

          // The session cookie is scoped to the gateway's path, not the whole host.
          const cookies = await context.cookies(`${base}/`);
          const session = cookies.find((c) => c.name.endsWith("mcpgw_session"));
          expect(session?.path).toBe("/gw");

          for (const path of ["/account", "/logout", "/device"]) {
            await page.goto(`${base}${path}`);
            expect(new URL(page.url()).pathname, path).toBe(`/gw${path}`);
            expectUnderPrefix(await targets(page), path);
          }
          await page.goto(`${base}/logout`);
          await Promise.all([page.waitForLoadState("load"), page.click("#sign-out")]);
          expect(await page.textContent("h1")).toBe("Signed out");
          expect(new URL(page.url()).pathname).toBe("/gw/logout");
        } finally {
          await context.close();
        }
      },
      SLOW,
    );

    it("a browser opening the service URL gets the 401 page, its challenge and its links under /gw/", async () => {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        const answer = await page.goto(`${base}/notes/mcp`);
        expect(answer?.status()).toBe(401);
        const challenge = (await answer?.headerValue("www-authenticate")) ?? "";
        expect(challenge).toContain(
          `resource_metadata="${base}/.well-known/oauth-protected-resource/notes/mcp"`,
        );
        expectUnderPrefix(await targets(page), "endpoint page");
      } finally {
        await context.close();
      }
    });

    it("metadata at every discovery URL a client derives (RFC 8414 §3.1, OIDC, RFC 9728 §3.1), naming the prefixed endpoints", async () => {
      const json = async (url: string) => {
        const res = await fetch(url, { headers: { "mcp-protocol-version": "2025-11-25" } });
        expect(res.status, url).toBe(200);
        return (await res.json()) as Record<string, unknown>;
      };
      for (const url of [
        `${origin}/.well-known/oauth-authorization-server/gw`,
        `${origin}/.well-known/openid-configuration/gw`,
        `${base}/.well-known/openid-configuration`,
        `${base}/.well-known/oauth-authorization-server`,
      ]) {
        const meta = await json(url);
        expect(meta.issuer, url).toBe(base);
        for (const key of ["authorization_endpoint", "token_endpoint", "registration_endpoint", "jwks_uri"])
          expect(String(meta[key]), `${url} ${key}`).toMatch(new RegExp(`^${base}/`));
      }
      // The resource's metadata: where its challenge points, and where RFC 9728 §3.1 puts it for a
      // client that probes without a challenge.
      for (const url of [
        `${base}/.well-known/oauth-protected-resource/notes/mcp`,
        `${origin}/.well-known/oauth-protected-resource/gw/notes/mcp`,
      ]) {
        const prm = await json(url);
        expect(prm.resource, url).toBe(`${base}/notes/mcp`);
        expect(prm.authorization_servers, url).toEqual([base]);
      }
      // The host's own /.well-known is not the gateway's.
      expect((await fetch(`${origin}/.well-known/oauth-authorization-server`)).status).toBe(404);
      // The device grant sends people to the prefixed page.
      const meta = await json(`${origin}/.well-known/oauth-authorization-server/gw`);
      expect(meta.device_authorization_endpoint).toBe(`${base}/device_authorization`);
    });
  },
);

describe("cookies under a path prefix", () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startFullGateway({ public_url: "https://gw.example.test/gw" });
  });
  afterAll(() => gw?.close({ wipe: true }));

  it("an https issuer with a path scopes its cookies to that path: __Secure- with Path=/gw (__Host- demands Path=/)", async () => {
    const res = await fetch(`${gw.url}/signin?next=/`, { redirect: "manual" });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toMatch(/^\/gw\/login\?request=/);
    const cookie = res.headers.getSetCookie().find((c) => c.includes("mcpgw_browser")) ?? "";
    expect(cookie).toMatch(/^__Secure-mcpgw_browser=/);
    expect(cookie).toContain("; Path=/gw;");
    expect(cookie).toContain("Secure");
  });
});
