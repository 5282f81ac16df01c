/**
 * `mcp-gateway token URL` never prints a token it has reason to think dead. It cannot know of a
 * revocation from the cache alone (and RFC 7662 introspection is not open to a public client),
 * so it asks the MCP server itself with one cheap authenticated request: a 401 means the token
 * is dead, and it refreshes (or, when the whole grant has ended, exits 1 saying why). Against
 * the real gateway, whose revocation endpoint ends an access token alone or a whole grant.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addLocalUser, LOGIN } from "../oauth/helpers.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { Browser, followAuthorization } from "../support/oauth-client.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { authorizationUrlOf, BUILT, runCli, startCli } from "./cli-process.js";

const run = BUILT || process.env.CI === "true";
if (!run) console.warn("skipping test/client/token-check.test.ts: run `npm run build` first");

interface Entry {
  tokens?: { access_token: string; refresh_token?: string };
}

describe.skipIf(!run)("token refuses to print a revoked access token", () => {
  let upstream: TestUpstream;
  let gw: RunningGateway;
  let dir: string;
  let serviceUrl: string;
  let TREE: Record<string, unknown>;
  const credentials = () =>
    JSON.parse(readFileSync(join(dir, "credentials.json"), "utf8")) as {
      servers: Record<string, Entry>;
    };

  /** What the gateway says of a token on the MCP endpoint. */
  const statusWith = async (token: string) =>
    (
      await fetch(serviceUrl, {
        method: "POST",
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "initialize",
          params: {
            protocolVersion: "2025-06-18",
            capabilities: {},
            clientInfo: { name: "t", version: "1" },
          },
        }),
      })
    ).status;

  const revoke = (token: string, hint: string) =>
    fetch(`${gw.url}/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        token,
        token_type_hint: hint,
        // The gateway's access tokens are JWTs naming their client.
        client_id: decodeJwt(credentials().servers[serviceUrl]?.tokens?.access_token as string)
          .client_id as string,
      }),
    });

  async function login() {
    const run = startCli(["login", serviceUrl, "--no-browser", "--timeout", "20s"], dir);
    const browser = new Browser();
    const back = await followAuthorization(
      gw.url,
      browser,
      (await authorizationUrlOf(run)).toString(),
      LOGIN,
    );
    await browser.get(back.toString());
    expect(await run.exited).toBe(0);
  }

  beforeAll(async () => {
    upstream = await startUpstream();
    TREE = { services: { notes: { url: upstream.url } } };
    gw = await startFullGateway(TREE);
    await addLocalUser(gw);
    dir = join(mkdtempSync(join(tmpdir(), "mcpgw-token-check-")), "creds");
    serviceUrl = `${gw.url}/notes/mcp`;
    await login();
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
    if (gw) rmSync(gw.dataDir, { recursive: true, force: true });
    rmSync(join(dir, ".."), { recursive: true, force: true });
  });

  it("an access token revoked on its own: token refreshes and prints one that works", async () => {
    const first = await runCli(["token", serviceUrl], dir);
    expect(first.code).toBe(0);
    const revoked = first.stdout.trim();
    expect(await statusWith(revoked)).toBe(200);

    expect((await revoke(revoked, "access_token")).status).toBe(200);
    expect(await statusWith(revoked)).toBe(401);

    const next = await runCli(["token", serviceUrl], dir);
    expect(next.stderr).toBe("");
    expect(next.code).toBe(0);
    const printed = next.stdout.trim();
    expect(printed).not.toBe(revoked);
    expect(await statusWith(printed)).toBe(200);
    expect(credentials().servers[serviceUrl]?.tokens?.access_token).toBe(printed);
  });

  it("a grant ended at the server: token exits 1, says why, prints nothing", async () => {
    const refreshToken = credentials().servers[serviceUrl]?.tokens?.refresh_token as string;
    const accessToken = credentials().servers[serviceUrl]?.tokens?.access_token as string;
    expect((await revoke(refreshToken, "refresh_token")).status).toBe(200);
    expect(await statusWith(accessToken)).toBe(401);

    const out = await runCli(["token", serviceUrl], dir);
    expect(out.code).toBe(1);
    expect(out.stdout).toBe("");
    expect(out.stderr).toContain("revoked");
    expect(out.stderr).toContain(`run: mcp-gateway login ${serviceUrl}`);
  });

  it("a server that cannot be reached is no reason to think the token dead: printed, with a warning", async () => {
    await login();
    const cached = credentials().servers[serviceUrl]?.tokens?.access_token as string;
    const { port, dataDir } = gw;
    await gw.close();
    try {
      const out = await runCli(["token", serviceUrl], dir);
      expect(out.code).toBe(0);
      expect(out.stdout.trim()).toBe(cached);
      expect(out.stderr).toContain("could not check");
      expect(out.stderr).toContain("ECONNREFUSED");
      // --no-check does not ask at all.
      const unchecked = await runCli(["token", serviceUrl, "--no-check"], dir);
      expect(unchecked).toMatchObject({ code: 0, stdout: `${cached}\n`, stderr: "" });
    } finally {
      gw = await startFullGateway(TREE, { port, dataDir });
    }
  });
});
