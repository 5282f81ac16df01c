/**
 * Where the client side keeps its credentials, as set from the environment: `MCPGW_CLIENT_DIR`,
 * outside the server's `MCP_GATEWAY_` namespace (whose every variable `serve` reads as a config
 * key). The old `MCP_GATEWAY_CLIENT_DIR` keeps working for the client, with one deprecation
 * line on stderr. Checked through the CLI process, on a credentials file written by the
 * previous version (which the CLI still reads).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultClientDir } from "../../src/client/credentials.js";
import { freePort } from "../support/upstream.js";
import { BUILT, runCli } from "./cli-process.js";

const run = BUILT || process.env.CI === "true";

describe("the credentials directory from the environment", () => {
  it("MCPGW_CLIENT_DIR first, then the deprecated MCP_GATEWAY_CLIENT_DIR, XDG_CONFIG_HOME, ~/.config", () => {
    const warnings: string[] = [];
    const warn = (m: string) => warnings.push(m);
    expect(defaultClientDir({ MCPGW_CLIENT_DIR: "/new", MCP_GATEWAY_CLIENT_DIR: "/old" }, warn)).toBe("/new");
    expect(warnings).toEqual([]);
    expect(defaultClientDir({ MCP_GATEWAY_CLIENT_DIR: "/old" }, warn)).toBe("/old");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("MCPGW_CLIENT_DIR");
    expect(defaultClientDir({ XDG_CONFIG_HOME: "/cfg" }, warn)).toBe("/cfg/mcp-gateway");
    expect(defaultClientDir({}, warn)).toMatch(/\.config\/mcp-gateway$/);
    expect(warnings).toHaveLength(1);
  });
});

describe.skipIf(!run)("the CLI uses the directory the environment names", () => {
  let root: string;
  let url: string;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "mcpgw-client-dir-"));
    // Nothing listens there: logout warns that it could not revoke, and forgets the entry anyway.
    url = `http://127.0.0.1:${await freePort()}/svc/mcp`;
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** A credentials file as the previous version wrote it (version 1, one entry per URL). */
  function seed(dir: string): void {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(
      join(dir, "credentials.json"),
      JSON.stringify({
        version: 1,
        servers: {
          [url]: {
            client: { client_id: "c1", redirect_uris: ["http://127.0.0.1:1/callback"] },
            tokens: {
              access_token: "at",
              token_type: "Bearer",
              refresh_token: "rt",
              expires_at: Date.now() + 3_600_000,
            },
          },
        },
      }),
      { mode: 0o600 },
    );
  }

  it("MCPGW_CLIENT_DIR: used, no notice", async () => {
    const dir = join(root, "new");
    seed(dir);
    const out = await runCli(["logout", url], dir);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain(`logged out of ${url}`);
    expect(out.stderr).not.toContain("deprecated");
    expect(JSON.parse(readFileSync(join(dir, "credentials.json"), "utf8")).servers[url]).toBeUndefined();
  });

  it("MCP_GATEWAY_CLIENT_DIR alone: still used, with one deprecation line", async () => {
    const dir = join(root, "old");
    seed(dir);
    const out = await runCli(["logout", url], join(root, "unused"), {
      env: { MCPGW_CLIENT_DIR: "", MCP_GATEWAY_CLIENT_DIR: dir },
    });
    expect(out.code).toBe(0);
    expect(out.stdout).toContain(`logged out of ${url}`);
    const notices = out.stderr.split("\n").filter((l) => l.includes("deprecated"));
    expect(notices).toHaveLength(1);
    expect(notices[0]).toContain("MCP_GATEWAY_CLIENT_DIR");
    expect(notices[0]).toContain("MCPGW_CLIENT_DIR");
  });
});
