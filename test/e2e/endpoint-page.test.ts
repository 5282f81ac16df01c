/**
 * A person who opens a service's MCP URL in a browser (Chromium, which asks for text/html):
 * the answer is still the 401 with its WWW-Authenticate challenge, so nothing about the
 * protocol changes, but its body is a page saying this is an MCP endpoint and how to connect a
 * client, in the pages' own CSP and framing rules. An MCP client's GET (text/event-stream) and
 * a POST keep the JSON-RPC error body.
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { snippetFor } from "../../src/web/snippets.js";
import { chromiumCheck, launchChromium } from "../support/chromium.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { raw } from "../support/mcp-http.js";

const SERVICES = { services: { notes: { url: "http://127.0.0.1:9/mcp" } } };

describe("a browser on /{service}/mcp", () => {
  let gw: RunningGateway;
  let browser: Browser | undefined;

  beforeAll(async () => {
    gw = await startFullGateway(SERVICES);
    if (chromiumCheck.available) browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await gw?.close({ wipe: true });
  });

  it.skipIf(!chromiumCheck.available)(
    "gets the 401 with its challenge and a page saying this is an MCP endpoint and how to connect",
    async () => {
      const context = await (browser as Browser).newContext();
      try {
        const page = await context.newPage();
        const response = await page.goto(`${gw.url}/notes/mcp`);
        expect(response?.status()).toBe(401);
        const headers = response?.headers() ?? {};
        expect(headers["www-authenticate"]).toBe(
          `Bearer resource_metadata="${gw.url}/.well-known/oauth-protected-resource/notes/mcp"`,
        );
        expect(headers["content-type"]).toMatch(/^text\/html/);
        expect(headers["content-security-policy"]).toContain("default-src 'none'");
        expect(headers["content-security-policy"]).toContain("frame-ancestors 'none'");
        expect(headers["x-frame-options"]).toBe("DENY");
        const text = ((await page.textContent("main")) ?? "").replace(/\s+/g, " ");
        expect(text).toContain("This is an MCP endpoint");
        await expect(page.textContent("#endpoint-url")).resolves.toBe(`${gw.url}/notes/mcp`);
        await expect(page.textContent("#example")).resolves.toBe(
          snippetFor("claude-code", `${gw.url}/notes/mcp`).text,
        );
        // The way on: the landing page's snippets for this service.
        await Promise.all([page.waitForURL(/\/\?service=notes#connect$/), page.click("#how-to-connect")]);
        await expect(page.textContent("#snippet-cursor")).resolves.toBe(
          snippetFor("cursor", `${gw.url}/notes/mcp`).text,
        );
        await page.goto(`${gw.url}/notes/mcp`);
        await page.setViewportSize({ width: 360, height: 740 });
        expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(360);
      } finally {
        await context.close();
      }
    },
    60_000,
  );

  it("keeps the JSON-RPC error for an MCP client's GET and for a POST, whatever else they accept", async () => {
    const requests: RequestInit[] = [
      { method: "GET", headers: { accept: "text/event-stream" } },
      {
        method: "POST",
        headers: {
          accept: "application/json, text/event-stream, text/html",
          "content-type": "application/json",
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
      },
    ];
    for (const init of requests) {
      const res = await fetch(`${gw.url}/notes/mcp`, init);
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toContain("resource_metadata=");
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      expect(((await res.json()) as { error: { code: number } }).error.code).toBe(-32000);
    }
    // text/html refused by q=0 is not a browser asking for a page.
    const res = await fetch(`${gw.url}/notes/mcp`, { headers: { accept: "text/html;q=0, */*" } });
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  });
});

describe("a browser on {service}.{base_domain}/mcp", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({
      base_domain: "mcp.test",
      services: { echo: { url: "http://127.0.0.1:9/mcp" } },
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it("gets the page naming the host URL it opened, and the landing page on the gateway's own URL", async () => {
    const res = await raw(`${gw.url}/mcp`, {
      headers: { host: "echo.mcp.test", accept: "text/html,application/xhtml+xml,*/*;q=0.8" },
    });
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toContain("resource_metadata=");
    expect(res.headers["content-type"]).toMatch(/^text\/html/);
    expect(res.text).toContain('<code id="endpoint-url">http://echo.mcp.test/mcp</code>');
    expect(res.text).toContain(`href="${gw.url}/?service=echo#connect"`);
  });
});
