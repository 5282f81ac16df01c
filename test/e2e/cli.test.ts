/**
 * The command line as a user meets it: `serve` on a fresh directory (banner, first-run admin
 * password, start-up time, SIGTERM), `config check` on good and bad configs, and the admin
 * commands against the same data.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalUsers } from "../../src/idp/local.js";
import type { AccessTokenClaims } from "../../src/tokens/claims.js";
import { childrenOf, isAlive, waitFor } from "../bridge/helpers.js";
import { startFullGateway } from "../support/full-gateway.js";
import { accessTokenFor } from "../support/login.js";
import { freePort } from "../support/upstream.js";
import { BIN, cleanEnv } from "./serve-process.js";

const BUILT = existsSync(resolve("dist/cli/main.js"));

function cli(args: string[], cwd: string, input?: string) {
  const res = spawnSync(process.execPath, [BIN, ...args], { cwd, input, encoding: "utf8", env: cleanEnv() });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe.skipIf(!BUILT && process.env.CI !== "true")("mcp-gateway CLI (run `npm run build` first)", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "mcpgw-cli-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("serve starts on a fresh directory, prints where it is, and stops cleanly on SIGTERM", async () => {
    const port = await freePort();
    const started = Date.now();
    const child: ChildProcess = spawn(process.execPath, [BIN, "serve", "--port", String(port)], {
      cwd: dir,
      env: cleanEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    // The banner is on stderr; stdout is the log.
    let out = "";
    const banner = await new Promise<number>((resolveBanner, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner in 30 s: ${out}`)), 30_000);
      child.stderr?.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("(shown once")) {
          clearTimeout(timer);
          resolveBanner(Date.now() - started);
        }
      });
    });
    expect(out).toContain(`listening on http://127.0.0.1:${port}`);
    expect(out).toContain(`issuer:   http://localhost:${port}`);
    expect(out).toContain(`store:    sqlite ${join(dir, "data", "gateway.db")}`);
    // With the services in the box too, data/ (database, secret, workspace) is the gateway user's only.
    expect((statSync(join(dir, "data")).mode & 0o777).toString(8)).toBe("700");
    const password = /password (\S+)/.exec(out)?.[1];
    expect(password).toBeTruthy();
    // Printed for the record only: start-up speed is a figure for bench/, not a bound a busy
    // machine can be held to.
    console.log(`serve: banner after ${banner} ms`);

    const meta = await fetch(`http://127.0.0.1:${port}/.well-known/oauth-authorization-server`);
    expect(((await meta.json()) as { issuer: string }).issuer).toBe(`http://localhost:${port}`);

    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);

    // A second start reuses the data: no new admin password.
    const again = spawnSync(process.execPath, [BIN, "admin", "users", "list"], {
      cwd: dir,
      encoding: "utf8",
      env: cleanEnv(),
    });
    expect(again.stdout).toContain('"name":"admin"');
  });

  it("config check: ok for a good file, exit 2 and one line naming the key for a bad one", () => {
    writeFileSync(join(dir, "good.yaml"), "port: 9000\ntokens:\n  access_ttl: 30m\n");
    const good = cli(["config", "check", "--config", "good.yaml"], dir);
    expect(good.status).toBe(0);
    expect(good.stdout).toContain("config ok");

    writeFileSync(join(dir, "bad.yaml"), "tokens:\n  access_ttl: soon\n");
    const bad = cli(["config", "check", "--config", "bad.yaml"], dir);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    expect(bad.stderr).toContain("tokens.access_ttl");

    writeFileSync(join(dir, "typo.yaml"), "tokens:\n  acess_ttl: 1h\n");
    const typo = cli(["config", "check", "--config", "typo.yaml"], dir);
    expect(typo.status).toBe(2);
    expect(typo.stderr).toContain("acess_ttl");
  });

  it("admin: add a user with a password from stdin, rotate keys, back up and restore", () => {
    const add = cli(
      ["admin", "users", "add", "dora", "--password-stdin", "--email", "dora@example.com"],
      dir,
      "a fine password\n",
    );
    expect(add.status).toBe(0);
    const short = cli(["admin", "users", "add", "eve", "--password-stdin"], dir, "short\n");
    expect(short.status).toBe(1);
    expect(short.stderr).toMatch(/at least 8/);

    const before = cli(["admin", "keys", "list"], dir).stdout.trim().split("\n");
    const rotate = cli(["admin", "keys", "rotate"], dir);
    expect(rotate.stdout).toMatch(/new signing key/);
    const after = cli(["admin", "keys", "list"], dir).stdout.trim().split("\n");
    expect(after.length).toBe(before.length + 1);
    expect(after.filter((l) => l.includes('"signing":true'))).toHaveLength(1);

    const backup = cli(["admin", "backup", "backup.json"], dir);
    expect(backup.status).toBe(0);
    const fresh = mkdtempSync(join(tmpdir(), "mcpgw-restore-"));
    // The keys in the backup are sealed: without the source's secret the restore refuses.
    const refused = cli(["admin", "restore", join(dir, "backup.json")], fresh);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/signing keys are sealed: copy the source's secret .* to .*data\/secret/);
    mkdirSync(join(fresh, "data"), { recursive: true, mode: 0o700 });
    copyFileSync(join(dir, "data", "secret"), join(fresh, "data", "secret"));
    const restore = cli(["admin", "restore", join(dir, "backup.json")], fresh);
    expect(restore.stdout).toMatch(/restored \d+ entries/);
    expect(cli(["admin", "users", "list"], fresh).stdout).toContain("dora");
    expect(cli(["admin", "keys", "list"], fresh).stdout.trim().split("\n").length).toBe(after.length);
    rmSync(fresh, { recursive: true, force: true });
    // Ten CLI processes one after another: a loaded machine needs more than the default 30 s.
  }, 120_000);

  it("serve with the services in the box: MCP sessions spawn children, SIGTERM leaves none behind", async () => {
    const home = mkdtempSync(join(tmpdir(), "mcpgw-serve-"));
    const port = await freePort();
    const child = spawn(process.execPath, [BIN, "serve", "--port", String(port)], {
      cwd: home,
      env: cleanEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stderr?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    await waitFor(() => out.includes("(shown once"), 15_000);
    const password = /password (\S+)/.exec(out)?.[1] as string;
    const base = `http://127.0.0.1:${port}`;
    const issuer = `http://localhost:${port}`;
    const services = ["time", "everything", "memory"];
    // The issuer is localhost; the resource URLs the gateway knows are under it.
    const { accessToken } = await accessTokenFor(
      base,
      services.map((s) => `${issuer}/${s}/mcp`),
      {
        username: "admin",
        password,
      },
    );
    const clients: Client[] = [];
    for (const service of services) {
      const client = new Client({ name: "serve-test", version: "1.0.0" });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${base}/${service}/mcp`), {
          requestInit: { headers: { authorization: `Bearer ${accessToken}` } },
        }),
      );
      expect((await client.listTools()).tools.length).toBeGreaterThan(0);
      clients.push(client);
    }
    // Every bridged service runs as a descendant of the gateway process.
    const descendants = (pid: number): number[] => childrenOf(pid).flatMap((c) => [c, ...descendants(c)]);
    const before = descendants(child.pid as number);
    expect(before.length).toBeGreaterThanOrEqual(services.length);

    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    // Children were started in their own process groups, so look them up by pid, not by parent.
    await waitFor(() => before.every((pid) => !isAlive(pid)), 10_000);
    for (const client of clients) await client.close().catch(() => undefined);
    rmSync(home, { recursive: true, force: true });
  });

  it("admin users remove revokes the user's tokens, whatever case the name is typed in", async () => {
    const data = mkdtempSync(join(tmpdir(), "mcpgw-remove-"));
    const gw = await startFullGateway(
      { services: { notes: { url: "http://127.0.0.1:9/mcp" } } },
      { dataDir: data },
    );
    try {
      await new LocalUsers(gw.store).add("Ivy", "ivy's password");
      const { accessToken } = await accessTokenFor(gw.url, [`${gw.url}/notes/mcp`], {
        username: "Ivy",
        password: "ivy's password",
      });
      const claims = decodeJwt(accessToken) as unknown as AccessTokenClaims;
      expect(claims.sub).toBe("Ivy");
      writeFileSync(join(data, "gateway.yaml"), `data_dir: ${data}\n`);
      const removed = cli(["admin", "users", "remove", "ivy", "--config", join(data, "gateway.yaml")], data);
      expect(removed.status).toBe(0);
      expect(await gw.as.parts.revocations.isRevoked(claims, { fresh: true })).toBe(true);
    } finally {
      await gw.close({ wipe: true });
      rmSync(data, { recursive: true, force: true });
    }
  });
});
