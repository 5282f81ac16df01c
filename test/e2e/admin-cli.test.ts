/**
 * `mcp-gateway admin` as an operator meets it, against the store of a running `serve`: lists as
 * aligned tables on a terminal (a pseudo-terminal from util-linux `script`) and as JSON lines
 * when piped, their filters, `clients purge` of a registration never used (the used one
 * survives), an unused registration's short lifetime in the store, `backup` refusing to
 * overwrite, and backup/restore progress on a store of more than 10,000 records.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SqliteStore } from "../../src/store/sqlite.js";
import { accessTokenFor } from "../support/login.js";
import { registerClient } from "../support/oauth-client.js";
import { runInPty, SCRIPT } from "../support/pty.js";
import { BIN, BUILT, type CliResult, cleanEnv, cli, type ServeProcess, startServe } from "./serve-process.js";

const UNUSED_TTL_S = 120;
const CLIENT_TTL_S = 7200;
const canRun = (BUILT && SCRIPT.available) || process.env.CI === "true";

/** The JSON lines of a piped admin command. */
function jsonLines(res: CliResult): Array<Record<string, unknown>> {
  expect(res.status, res.stderr).toBe(0);
  return res.stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The client's row in the SQLite store: when it expires (epoch ms) and what it holds. */
function storedClient(dbPath: string, clientId: string) {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const row = db
      .prepare("SELECT value, expires_at FROM kv WHERE ns = 'clients' AND key = ?")
      .get(clientId) as { value: string; expires_at: number | null } | undefined;
    if (!row) return undefined;
    return { expiresAt: row.expires_at, record: JSON.parse(row.value) as Record<string, unknown> };
  } finally {
    db.close();
  }
}

/** The column each header starts at, and the rows' text in that column (trimmed). */
function tableColumns(output: string, headers: string[]) {
  const lines = output.split("\n").filter((l) => l.trim() !== "");
  const headerLine = lines.findIndex((l) => headers.every((h) => l.includes(h)));
  expect(headerLine, output).toBeGreaterThanOrEqual(0);
  const head = lines[headerLine] as string;
  const starts = headers.map((h) => head.indexOf(h));
  const rows = lines.slice(headerLine + 1).map((line) =>
    starts.map((start, i) => {
      const end = starts[i + 1] ?? line.length;
      return {
        text: line.slice(start, end).trim(),
        startsAtColumn: line[start] !== " " && (start === 0 || line[start - 1] === " "),
      };
    }),
  );
  return { head, rows };
}

describe.skipIf(!canRun)("admin CLI for people (run `npm run build` first)", () => {
  let dir: string;
  let dbPath: string;
  let gateway: ServeProcess;
  let unused: { client_id: string; client_id_issued_at: number };
  let used: { clientId: string };
  // serve got its port as a flag: the admin commands need it too, for the services' URLs.
  const portEnv = () => ({ MCP_GATEWAY_PORT: String(gateway.port) });
  const env = () => ({ cwd: dir, env: portEnv() });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "mcpgw-admin-"));
    dbPath = join(dir, "data", "gateway.db");
    writeFileSync(
      join(dir, "gateway.yaml"),
      [
        "registration:",
        `  unused_ttl: ${UNUSED_TTL_S}`,
        `  client_ttl: ${CLIENT_TTL_S}`,
        "services:",
        "  notes:",
        "    url: http://127.0.0.1:9/mcp",
        "",
      ].join("\n"),
    );
    gateway = await startServe({ cwd: dir, args: ["--no-builtins"] });
    unused = (await registerClient(gateway.base, {
      client_name: "Alpha never used",
    })) as unknown as typeof unused;
    const issuer = `http://localhost:${gateway.port}`;
    used = await accessTokenFor(gateway.base, [`${issuer}/notes/mcp`], {
      username: "admin",
      password: gateway.password as string,
    });
  }, 120_000);

  afterAll(async () => {
    await gateway?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("a registration never used is kept registration.unused_ttl; its first token gives it client_ttl", () => {
    const idle = storedClient(dbPath, unused.client_id);
    expect(idle?.expiresAt).toBeDefined();
    // Stored with the short lifetime, counted from its registration.
    const idleLeft = (idle?.expiresAt as number) - unused.client_id_issued_at * 1000;
    expect(idleLeft).toBeGreaterThan((UNUSED_TTL_S - 5) * 1000);
    // Store TTLs are whole seconds from the current second: up to a second over.
    expect(idleLeft).toBeLessThanOrEqual((UNUSED_TTL_S + 1) * 1000);
    expect(idle?.record.first_token_at).toBeUndefined();

    const active = storedClient(dbPath, used.clientId);
    const record = active?.record as {
      client_id_issued_at: number;
      first_token_at?: number;
      last_used_at?: number;
    };
    expect(record.first_token_at).toBeGreaterThanOrEqual(record.client_id_issued_at);
    expect(record.last_used_at).toBe(record.first_token_at);
    const activeLeft = (active?.expiresAt as number) - record.client_id_issued_at * 1000;
    expect(activeLeft).toBeGreaterThan((CLIENT_TTL_S - 60) * 1000);
    expect(activeLeft).toBeLessThanOrEqual((CLIENT_TTL_S + 1) * 1000);
  });

  it("lists are aligned tables on a terminal", () => {
    const clients = runInPty([process.execPath, BIN, "admin", "clients", "list"], {
      cwd: dir,
      env: cleanEnv(portEnv()),
    });
    expect(clients.status, clients.output).toBe(0);
    const table = tableColumns(clients.output, [
      "CLIENT ID",
      "NAME",
      "AUTH",
      "REGISTERED",
      "LAST USED",
      "EXPIRES",
    ]);
    expect(table.rows).toHaveLength(2);
    for (const row of table.rows)
      for (const cell of row) expect(cell.startsAtColumn, clients.output).toBe(true);
    const byId = new Map(table.rows.map((r) => [r[0]?.text, r]));
    expect(byId.get(unused.client_id)?.[1]?.text).toBe("Alpha never used");
    expect(byId.get(unused.client_id)?.[4]?.text).toBe("never");
    expect(byId.get(used.clientId)?.[4]?.text).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    const users = runInPty([process.execPath, BIN, "admin", "users", "list"], {
      cwd: dir,
      env: cleanEnv(portEnv()),
    });
    const userTable = tableColumns(users.output, ["NAME", "EMAIL", "CREATED", "DISABLED"]);
    expect(userTable.rows.map((r) => r[0]?.text)).toEqual(["admin"]);

    const tokens = runInPty([process.execPath, BIN, "admin", "tokens", "list"], {
      cwd: dir,
      env: cleanEnv(portEnv()),
    });
    const tokenTable = tableColumns(tokens.output, ["GRANT", "USER", "CLIENT", "SERVICES", "SINCE"]);
    expect(tokenTable.rows).toHaveLength(1);
    expect(tokenTable.rows[0]?.[1]?.text).toBe("admin");
    expect(tokenTable.rows[0]?.[3]?.text).toBe("notes");

    // --json on a terminal: JSON lines all the same.
    const json = runInPty([process.execPath, BIN, "admin", "users", "list", "--json"], {
      cwd: dir,
      env: cleanEnv(portEnv()),
    });
    expect(JSON.parse(json.output.trim())).toMatchObject({ name: "admin" });
  }, 120_000);

  it("lists are JSON lines when piped, and --client / --user filter them", () => {
    const all = jsonLines(cli(["admin", "clients", "list"], env()));
    expect(all.map((c) => c.client_id).sort()).toEqual([unused.client_id, used.clientId].sort());
    const idle = all.find((c) => c.client_id === unused.client_id);
    expect(idle).toMatchObject({ client_name: "Alpha never used", source: "dcr" });
    expect(idle?.last_used).toBeUndefined();
    expect(all.find((c) => c.client_id === used.clientId)?.last_used).toMatch(/Z$/);

    // By part of the name, any case, and by id.
    expect(
      jsonLines(cli(["admin", "clients", "list", "--client", "alpha"], env())).map((c) => c.client_id),
    ).toEqual([unused.client_id]);
    expect(
      jsonLines(cli(["admin", "clients", "list", "--client", used.clientId], env())).map((c) => c.client_id),
    ).toEqual([used.clientId]);
    // The clients a user granted.
    expect(
      jsonLines(cli(["admin", "clients", "list", "--user", "admin"], env())).map((c) => c.client_id),
    ).toEqual([used.clientId]);

    const grants = jsonLines(cli(["admin", "tokens", "list", "--user", "ADMIN"], env()));
    expect(grants).toHaveLength(1);
    expect(grants[0]).toMatchObject({ user: "admin", client_id: used.clientId, services: ["notes"] });
    expect(jsonLines(cli(["admin", "tokens", "list", "--client", used.clientId], env()))).toHaveLength(1);
    // Nothing matches: no lines at all (not a "(none)" a JSON reader would choke on).
    const none = cli(["admin", "tokens", "list", "--client", unused.client_id], env());
    expect(none.status).toBe(0);
    expect(none.stdout).toBe("");
    expect(jsonLines(cli(["admin", "tokens", "list", "--user", "nobody"], env()))).toHaveLength(0);
  }, 120_000);

  it("clients purge --dry-run names the unused client and deletes nothing; purge deletes it, the used one stays", () => {
    // Registered moments ago: not unused for an hour yet.
    const notYet = cli(["admin", "clients", "purge", "--unused-for", "1h", "--dry-run"], env());
    expect(jsonLines(notYet)).toHaveLength(0);

    const dry = cli(["admin", "clients", "purge", "--unused-for", "0s", "--dry-run"], env());
    expect(jsonLines(dry)).toEqual([
      expect.objectContaining({ client_id: unused.client_id, reason: "unused" }),
    ]);
    expect(dry.stderr).toContain("would delete 1 client(s)");
    expect(storedClient(dbPath, unused.client_id)).toBeDefined();

    const purge = cli(["admin", "clients", "purge", "--unused-for", "0s"], env());
    expect(jsonLines(purge)).toEqual([
      expect.objectContaining({ client_id: unused.client_id, reason: "unused" }),
    ]);
    expect(purge.stderr).toContain("deleted 1 client(s)");
    expect(storedClient(dbPath, unused.client_id)).toBeUndefined();
    expect(storedClient(dbPath, used.clientId)).toBeDefined();
    expect(jsonLines(cli(["admin", "clients", "list"], env())).map((c) => c.client_id)).toEqual([
      used.clientId,
    ]);

    const bad = cli(["admin", "clients", "purge", "--unused-for", "soon"], env());
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain("--unused-for");
  }, 120_000);

  it("backup refuses to overwrite a file without --force", () => {
    const file = join(dir, "backup.json");
    expect(cli(["admin", "backup", file], env()).status).toBe(0);
    writeFileSync(file, "precious");
    const again = cli(["admin", "backup", file], env());
    expect(again.status).toBe(1);
    expect(again.stderr).toContain("--force");
    expect(readFileSync(file, "utf8")).toBe("precious");

    const forced = cli(["admin", "backup", file, "--force"], env());
    expect(forced.status, forced.stderr).toBe(0);
    expect(JSON.parse(readFileSync(file, "utf8"))).toMatchObject({ format: "mcp-oauth-gateway-backup" });
    expect(statSync(file).mode & 0o777).toBe(0o600);
  }, 120_000);

  it("backup and restore print progress on stderr past 10,000 records", async () => {
    const big = mkdtempSync(join(tmpdir(), "mcpgw-admin-big-"));
    const target = mkdtempSync(join(tmpdir(), "mcpgw-admin-restore-"));
    try {
      const records = 12_345;
      const store = new SqliteStore(join(big, "data", "gateway.db"));
      const until = Math.floor(Date.now() / 1000) + 3600;
      for (let i = 0; i < records; i++) await store.put("revoked", `jti:${i}`, { at: until - 3600 }, 3600);
      await store.close();

      const file = join(big, "big.json");
      const backup = cli(["admin", "backup", file], { cwd: big });
      expect(backup.status, backup.stderr).toBe(0);
      expect(backup.stdout).toContain(`wrote ${records} entries`);
      expect(backup.stderr).toMatch(/^backup: \d+ entries read/m);

      const restore = cli(["admin", "restore", resolve(file)], { cwd: target });
      expect(restore.status, restore.stderr).toBe(0);
      expect(restore.stderr).toContain(`restore: 10000 of ${records} entries`);
      expect(restore.stdout).toContain(`restored ${records} entries`);

      // A small store prints no progress at all.
      const small = cli(["admin", "backup", join(dir, "small.json")], env());
      expect(small.status).toBe(0);
      expect(small.stderr).toBe("");
    } finally {
      rmSync(big, { recursive: true, force: true });
      rmSync(target, { recursive: true, force: true });
    }
  }, 180_000);
});
