/**
 * The device page with GitHub as the identity provider (through the GitHub emulator): the
 * sign-in it starts goes to GitHub and comes back on /callback to the device page, not to a
 * client. The allowlist is checked again when the device is approved: a session that outlives
 * its user's place on the allowlist approves nothing.
 */
import { rmSync } from "node:fs";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { answerDevice, enterCode, pollOnce, registerDeviceClient, startDevice } from "../support/device.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { type GitHubEmulator, githubSettings, startGitHubEmulator } from "../support/github-emulator.js";
import { Browser, formField } from "../support/oauth-client.js";

const OCTOCAT = { id: 583231, login: "octocat", name: "The Octocat", email: "octocat@github.com" };

/** Follows every redirect (gateway and emulator) from `start` to the page it ends on. */
async function follow(
  browser: Browser,
  start: string,
): Promise<{ status: number; html: string; url: string }> {
  let url = start;
  let res = await browser.get(url);
  for (let hops = 0; hops < 10; hops++) {
    const location = res.headers.get("location");
    if ((res.status === 302 || res.status === 303) && location) {
      url = new URL(location, url).toString();
      res = await browser.get(url);
      continue;
    }
    return { status: res.status, html: await res.text(), url };
  }
  throw new Error("too many redirects");
}

describe("device page with GitHub sign-in", () => {
  let emulator: GitHubEmulator;
  let gw: RunningGateway;

  const tree = (allowed: string[]) => ({
    services: { notes: { url: "http://127.0.0.1:9/mcp", scopes: ["notes:read"] } },
    idp: {
      type: "github",
      github: githubSettings(emulator, { allowed_users: allowed }),
    },
  });

  beforeAll(async () => {
    emulator = await startGitHubEmulator({ user: OCTOCAT });
    gw = await startFullGateway(tree(["octocat"]));
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
    if (gw) rmSync(gw.dataDir, { recursive: true, force: true });
    await emulator?.stop();
  });

  it("signs in at GitHub, comes back to the device page with the code, and the device gets the user's tokens", async () => {
    const client = await registerDeviceClient(gw.url);
    const codes = await startDevice(gw.url, client, { resource: `${gw.url}/notes/mcp` });
    const browser = new Browser();
    emulator.requests.length = 0;
    const landed = await follow(browser, codes.verification_uri_complete);
    expect(emulator.requests).toEqual(expect.arrayContaining(["/login/oauth/authorize", "/api/v3/user"]));
    expect(landed.url).toBe(codes.verification_uri_complete);
    expect(landed.status).toBe(200);
    expect(landed.html).toContain(`value="${codes.user_code}"`);
    const csrf = formField(landed.html, "csrf");
    expect((await enterCode(gw.url, browser, csrf, codes.user_code)).status).toBe(200);
    expect((await answerDevice(gw.url, browser, csrf, codes.user_code, "allow")).status).toBe(200);
    const tokens = await pollOnce(gw.url, client, codes.device_code);
    expect(tokens.status).toBe(200);
    expect(decodeJwt(tokens.body.access_token as string)).toMatchObject({
      sub: String(OCTOCAT.id),
      preferred_username: "octocat",
      aud: `${gw.url}/notes/mcp`,
    });
  });

  it("refuses the approval with 403 once the signed-in user is off the allowlist; the device keeps waiting", async () => {
    const client = await registerDeviceClient(gw.url);
    const codes = await startDevice(gw.url, client);
    // No keep-alive: the requests after the restart must not reuse a socket of the old server.
    const browser = new Browser({ connection: "close" });
    const landed = await follow(browser, codes.verification_uri);
    const csrf = formField(landed.html, "csrf");

    // Same data (the browser's session lives on), octocat no longer listed.
    const { port, dataDir } = gw;
    await gw.close();
    gw = await startFullGateway(tree(["hubot"]), { dataDir, port });
    const refused = await answerDevice(gw.url, browser, csrf, codes.user_code, "allow");
    expect(refused.status).toBe(403);
    expect(refused.html).toContain("Access denied");
    expect((await enterCode(gw.url, browser, csrf, codes.user_code)).status).toBe(403);
    expect((await pollOnce(gw.url, client, codes.device_code)).body.error).toBe("authorization_pending");
  });
});
