/** The loopback redirect receiver over a real socket: one callback, state checked, timeouts. */
import { describe, expect, it } from "vitest";
import { AuthorizationRedirectError, startLoopbackReceiver } from "../../src/client/loopback.js";

describe("loopback redirect receiver", () => {
  it("listens on 127.0.0.1, takes the code once, and ignores other paths", async () => {
    const receiver = await startLoopbackReceiver({ state: "s1", timeoutMs: 5000 });
    expect(receiver.redirectUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    const favicon = await fetch(new URL("/favicon.ico", receiver.redirectUrl));
    expect(favicon.status).toBe(404);
    const page = await fetch(
      `${receiver.redirectUrl}?code=abc&state=s1&iss=${encodeURIComponent("http://as")}`,
    );
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(page.headers.get("referrer-policy")).toBe("no-referrer");
    await expect(receiver.result).resolves.toEqual({ code: "abc", iss: "http://as" });
    // One request only: the server is gone afterwards.
    await new Promise((r) => setTimeout(r, 20));
    await expect(fetch(`${receiver.redirectUrl}?code=again&state=s1`)).rejects.toThrow();
  });

  it("refuses a wrong or missing state, and ends the login", async () => {
    for (const query of ["?code=abc&state=other", "?code=abc"]) {
      const receiver = await startLoopbackReceiver({ state: "s2", timeoutMs: 5000 });
      const page = await fetch(`${receiver.redirectUrl}${query}`);
      expect(page.status).toBe(400);
      expect(await page.text()).toContain("state mismatch");
      await expect(receiver.result).rejects.toThrow("wrong state");
    }
  });

  it("reports an error redirect in OAuth's terms, escaped on the page", async () => {
    const receiver = await startLoopbackReceiver({ state: "s3", timeoutMs: 5000 });
    const page = await fetch(
      `${receiver.redirectUrl}?state=s3&error=access_denied&error_description=${encodeURIComponent("<script>x</script>")}`,
    );
    expect(page.status).toBe(400);
    const html = await page.text();
    expect(html).not.toContain("<script>");
    expect(html).toContain("&lt;script&gt;");
    const err = await receiver.result.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthorizationRedirectError);
    expect((err as AuthorizationRedirectError).error).toBe("access_denied");
  });

  it("a redirect with the right state but no code fails", async () => {
    const receiver = await startLoopbackReceiver({ state: "s4", timeoutMs: 5000 });
    expect((await fetch(`${receiver.redirectUrl}?state=s4`)).status).toBe(400);
    await expect(receiver.result).rejects.toThrow("no authorization code");
  });

  it("times out, and close() cancels", async () => {
    const slow = await startLoopbackReceiver({ state: "s5", timeoutMs: 150 });
    await expect(slow.result).rejects.toThrow("timed out");
    const cancelled = await startLoopbackReceiver({ state: "s6", timeoutMs: 5000 });
    await cancelled.close();
    await expect(cancelled.result).rejects.toThrow("cancelled");
  });
});
