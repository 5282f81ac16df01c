/**
 * Which client the CLI uses at which authorization server, over real sockets: registrations are
 * kept per issuer (RFC 6749 §2.2: a client id means something only to the server that issued
 * it), a resource that moves to another authorization server gets a new registration there
 * (SEP-2352) and the old login is not sent to the new server, and a client registered by hand
 * is used as given (`login --client-id ID [--client-secret-file F]`). Against scenario servers,
 * and against the real gateway for two services behind one issuer.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addLocalUser, LOGIN } from "../oauth/helpers.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { Browser, followAuthorization } from "../support/oauth-client.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { authorizationUrlOf, BUILT, runCli, startCli } from "./cli-process.js";
import { loginApproving } from "./scenario/login-flow.js";
import { modernHandler } from "./scenario/mcp-servers.js";
import { type Scenario, startScenario } from "./scenario/oauth-scenario.js";

const run = BUILT || process.env.CI === "true";
if (!run) console.warn("skipping test/client/registration.test.ts: run `npm run build` first");

interface CredentialsFile {
  version: number;
  clients: Record<string, { client_id: string; client_secret?: string; issuer?: string }>;
  servers: Record<string, { issuer?: string; tokens?: { access_token: string } }>;
}
const readCredentials = (dir: string): CredentialsFile =>
  JSON.parse(readFileSync(join(dir, "credentials.json"), "utf8")) as CredentialsFile;

describe.skipIf(!run)("client registrations per authorization server", () => {
  let root: string;
  let s: Scenario;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "mcpgw-registration-"));
    s = await startScenario({ as1: { advertiseIss: true }, as2: { advertiseIss: true } }, modernHandler());
  });
  afterAll(async () => {
    await s?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("keys the registration by issuer and the tokens by server URL and issuer", async () => {
    const dir = join(root, "keyed");
    const login = await loginApproving(s.mcpUrl, dir);
    expect(login.code).toBe(0);
    const file = readCredentials(dir);
    const issuer = s.as.as1?.issuer as string;
    expect(file.clients[issuer]?.client_id).toBe(s.as.as1?.registrations[0]?.client_id);
    expect(file.servers[s.mcpUrl]?.issuer).toBe(issuer);
    expect(file.servers[s.mcpUrl]?.tokens?.access_token).toBeTruthy();
  });

  it("when the resource moves to another authorization server: token and connect say so, login registers there", {
    timeout: 120_000,
  }, async () => {
    const dir = join(root, "moved");
    s.setAuthorizationServer("as1");
    expect((await loginApproving(s.mcpUrl, dir)).code).toBe(0);
    const as1Registrations = s.as.as1?.registrations.length ?? 0;
    const as1Refreshes = () =>
      s.as.as1?.tokenRequests.filter((r) => r.get("grant_type") === "refresh_token").length;
    const before = as1Refreshes();

    s.setAuthorizationServer("as2");
    try {
      const token = await runCli(["token", s.mcpUrl], dir);
      expect(token.code).toBe(1);
      expect(token.stdout).toBe("");
      expect(token.stderr).toContain(`${s.as.as2?.issuer}`);
      expect(token.stderr).toContain(`run: mcp-gateway login ${s.mcpUrl}`);
      // connect says the same to its stdio client, as the answer to initialize.
      // (It would ask for a new login in a browser; nobody comes within the second it waits.)
      const connect = startCli(["connect", s.mcpUrl, "--no-browser", "--login-timeout", "1s"], dir, {
        stdin: true,
      });
      const answer = new Promise<string>((resolve) => {
        let out = "";
        connect.child.stdout?.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes("\n")) resolve(out);
        });
      });
      connect.child.stdin?.write(
        `${JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } } })}\n`,
      );
      const reply = JSON.parse(await answer) as { error?: { message: string } };
      connect.child.stdin?.end();
      await connect.exited;
      expect(reply.error?.message).toContain(`${s.as.as2?.issuer}`);
      expect(reply.error?.message).toContain(`run: mcp-gateway login ${s.mcpUrl}`);
      // The login of the old server was not offered to the new one.
      expect(s.as.as2?.tokenRequests).toHaveLength(0);
      expect(as1Refreshes()).toBe(before);

      const again = await loginApproving(s.mcpUrl, dir);
      expect(again.code).toBe(0);
      expect(s.as.as2?.registrations).toHaveLength(1);
      expect(again.authorizationUrl.href.startsWith(`${s.as.as2?.issuer}/authorize?`)).toBe(true);
      expect(again.authorizationUrl.searchParams.get("client_id")).toBe(
        s.as.as2?.registrations[0]?.client_id,
      );
      const file = readCredentials(dir);
      // Both registrations are kept, each under its own issuer.
      expect(Object.keys(file.clients).sort()).toEqual([s.as.as1?.issuer, s.as.as2?.issuer].sort());
      expect(file.servers[s.mcpUrl]?.issuer).toBe(s.as.as2?.issuer);
      const works = await runCli(["token", s.mcpUrl], dir);
      expect(works.code).toBe(0);
      expect(s.as.as2?.scopeOf(works.stdout.trim())).toBeDefined();
    } finally {
      s.setAuthorizationServer("as1");
    }
    // Back at the first server: its registration is used again, not a new one.
    const back = await loginApproving(s.mcpUrl, dir);
    expect(back.code).toBe(0);
    expect(s.as.as1?.registrations.length).toBe(as1Registrations);
  });

  it("login --client-id --client-secret-file uses a client registered by hand, and keeps the secret 0600", async () => {
    const dir = join(root, "pre");
    s.as.as1?.preRegister("hand-made", "s3cret-value");
    const secretFile = join(root, "secret.txt");
    writeFileSync(secretFile, "s3cret-value\n", { mode: 0o600 });
    const registrations = s.as.as1?.registrations.length;
    const login = await loginApproving(s.mcpUrl, dir, [
      "--client-id",
      "hand-made",
      "--client-secret-file",
      secretFile,
    ]);
    expect(login.run.stderr()).not.toContain("error");
    expect(login.code).toBe(0);
    expect(s.as.as1?.registrations.length).toBe(registrations);
    expect(login.authorizationUrl.searchParams.get("client_id")).toBe("hand-made");
    const file = readCredentials(dir);
    expect(file.clients[s.as.as1?.issuer as string]).toMatchObject({
      client_id: "hand-made",
      client_secret: "s3cret-value",
    });
    expect(statSync(join(dir, "credentials.json")).mode & 0o777).toBe(0o600);
    // A refresh authenticates with the secret too.
    expect((await runCli(["token", s.mcpUrl], dir)).code).toBe(0);
  });

  it("login --client-id alone is a public client registered by hand", async () => {
    const dir = join(root, "pre-public");
    s.as.as1?.preRegister("hand-public");
    const login = await loginApproving(s.mcpUrl, dir, ["--client-id", "hand-public"]);
    expect(login.code).toBe(0);
    const exchange = s.as.as1?.tokenRequests.at(-1);
    expect(exchange?.get("client_id")).toBe("hand-public");
    expect(exchange?.get("client_secret")).toBeNull();
  });

  it("refuses a --client-secret-file that cannot be read, and --client-secret-file without --client-id", async () => {
    const missing = await runCli(
      ["login", s.mcpUrl, "--client-id", "x", "--client-secret-file", join(root, "nope"), "--no-browser"],
      join(root, "bad"),
    );
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(join(root, "nope"));
    const orphan = await runCli(
      ["login", s.mcpUrl, "--client-secret-file", join(root, "secret.txt"), "--no-browser"],
      join(root, "bad"),
    );
    expect(orphan.code).toBe(1);
    expect(orphan.stderr).toContain("--client-id");
  });
});

describe.skipIf(!run)("two services behind one gateway share one registration", () => {
  let upstream: TestUpstream;
  let gw: RunningGateway;
  let dir: string;
  beforeAll(async () => {
    upstream = await startUpstream();
    gw = await startFullGateway({ services: { one: { url: upstream.url }, two: { url: upstream.url } } });
    await addLocalUser(gw);
    dir = join(mkdtempSync(join(tmpdir(), "mcpgw-shared-")), "creds");
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
    await upstream?.close();
    rmSync(join(dir, ".."), { recursive: true, force: true });
  });

  it("logs in to both with the same client id, kept once under the gateway's issuer", async () => {
    const ids: string[] = [];
    for (const service of ["one", "two"]) {
      const run = startCli(["login", `${gw.url}/${service}/mcp`, "--no-browser", "--timeout", "20s"], dir);
      const url = await authorizationUrlOf(run);
      ids.push(url.searchParams.get("client_id") as string);
      const browser = new Browser();
      const back = await followAuthorization(gw.url, browser, url.toString(), LOGIN);
      await browser.get(back.toString());
      expect(await run.exited).toBe(0);
    }
    expect(ids[0]).toBe(ids[1]);
    const file = readCredentials(dir);
    expect(Object.keys(file.clients)).toEqual([gw.url]);
    expect(file.servers[`${gw.url}/one/mcp`]?.issuer).toBe(gw.url);
    expect(file.servers[`${gw.url}/two/mcp`]?.issuer).toBe(gw.url);
  });
});
