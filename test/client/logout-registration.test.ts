/**
 * `mcp-gateway logout` and the CLI's own registration (RFC 7592 §2.3), with everything as a
 * process: `serve` on SQLite, the CLI logging in to two services of that gateway (one
 * registration, shared per issuer), `logout` of the first keeping the registration (the second
 * login still uses it), `logout` of the second deleting it: `admin clients list` no longer has
 * the client, the credentials file no longer holds it, and its refresh token is dead. A
 * registration an operator deleted first is forgotten by the next logout.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StoredClient, StoredTokens } from "../../src/client/credentials.js";
import { cli, type ServeProcess, startServe } from "../e2e/serve-process.js";
import { Browser, followAuthorization, tokenRequest } from "../support/oauth-client.js";
import { freePort } from "../support/upstream.js";
import { authorizationUrlOf, BUILT, runCli, startCli } from "./cli-process.js";

interface CredentialsFile {
  clients: Record<string, StoredClient>;
  servers: Record<string, { issuer?: string; tokens?: StoredTokens }>;
}

describe.skipIf(!BUILT && process.env.CI !== "true")("logout deletes the CLI's own registration", () => {
  let dir: string;
  let clientDir: string;
  let gateway: ServeProcess;
  let issuer: string;
  let notesUrl: string;
  let docsUrl: string;

  const credentials = () =>
    JSON.parse(readFileSync(join(clientDir, "credentials.json"), "utf8")) as CredentialsFile;
  /** The client ids `admin clients list` shows (JSON lines: its stdout is a pipe). */
  const listedClients = () => {
    const res = cli(["admin", "clients", "list"], {
      cwd: dir,
      env: { MCP_GATEWAY_PORT: String(gateway.port) },
    });
    expect(res.status, res.stderr).toBe(0);
    return res.stdout
      .split("\n")
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { client_id: string }).client_id);
  };

  /** `mcp-gateway login URL` as a process, its browser steps driven over HTTP. */
  async function login(url: string) {
    const run = startCli(["login", url, "--no-browser", "--timeout", "60s"], clientDir);
    const authorizationUrl = await authorizationUrlOf(run, 30_000);
    const back = await followAuthorization(issuer, new Browser(), authorizationUrl.toString(), {
      username: "admin",
      password: gateway.password as string,
    });
    await fetch(back);
    expect(await run.exited, run.stderr()).toBe(0);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "mcpgw-logout-"));
    clientDir = join(dir, "client");
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    // Upstreams that are never reached: login and logout only talk to the authorization server.
    writeFileSync(
      join(dir, "gateway.yaml"),
      [
        `public_url: ${issuer}`,
        "services:",
        "  notes: { url: http://127.0.0.1:9/mcp }",
        "  docs: { url: http://127.0.0.1:9/mcp }",
        "",
      ].join("\n"),
    );
    gateway = await startServe({ cwd: dir, port, args: ["--no-builtins"], timeoutMs: 60_000 });
    notesUrl = `${issuer}/notes/mcp`;
    docsUrl = `${issuer}/docs/mcp`;
    await login(notesUrl);
    await login(docsUrl);
  }, 180_000);

  afterAll(async () => {
    await gateway?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("keeps the registration while another login uses it, deletes it with the last one", async () => {
    const registration = credentials().clients[issuer] as StoredClient;
    expect(registration.registration_access_token).toBeTruthy();
    expect(registration.registration_client_uri).toBe(`${issuer}/register/${registration.client_id}`);
    expect(listedClients()).toContain(registration.client_id);
    const docsRefresh = credentials().servers[docsUrl]?.tokens?.refresh_token as string;

    const first = await runCli(["logout", notesUrl], clientDir);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`logged out of ${notesUrl} (tokens revoked)`);
    expect(first.stdout).toContain(`registration kept: the login to ${docsUrl} uses it too`);
    expect(listedClients()).toContain(registration.client_id);
    expect(credentials().clients[issuer]?.client_id).toBe(registration.client_id);

    const last = await runCli(["logout", docsUrl], clientDir);
    expect(last.code, last.stderr).toBe(0);
    expect(last.stdout).toContain(`logged out of ${docsUrl} (tokens revoked)`);
    expect(last.stdout).toContain("registration deleted at the server");
    expect(last.stderr).toBe("");

    // The gateway no longer has the client; the CLI no longer holds it; its tokens are dead.
    expect(listedClients()).not.toContain(registration.client_id);
    expect(credentials().clients[issuer]).toBeUndefined();
    expect(credentials().servers).toEqual({});
    const refresh = await tokenRequest(issuer, {
      grant_type: "refresh_token",
      refresh_token: docsRefresh,
      client_id: registration.client_id,
    });
    expect(refresh.status).toBeGreaterThanOrEqual(400);
    expect(["invalid_client", "invalid_grant"]).toContain(refresh.body.error);

    // The next login registers anew.
    await login(notesUrl);
    const next = credentials().clients[issuer] as StoredClient;
    expect(next.client_id).not.toBe(registration.client_id);
    expect(listedClients()).toContain(next.client_id);
  }, 180_000);

  it("a registration the operator deleted meanwhile is forgotten, with the failed revocation said on stderr", async () => {
    const registration = credentials().clients[issuer] as StoredClient;
    const deleted = cli(["admin", "clients", "delete", registration.client_id], {
      cwd: dir,
      env: { MCP_GATEWAY_PORT: String(gateway.port) },
    });
    expect(deleted.status, deleted.stderr).toBe(0);

    const out = await runCli(["logout", notesUrl], clientDir);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain(`logged out of ${notesUrl}`);
    expect(out.stderr).toContain("could not revoke at the server");
    expect(out.stdout).toContain("registration forgotten (the server no longer had it)");
    expect(credentials().clients[issuer]).toBeUndefined();
  }, 120_000);
});
