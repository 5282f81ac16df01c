/**
 * What an `admin …` command loads before it does its work: its start-up is most of what an
 * operator waits for when removing a user (bench/RESULTS.md "Ending an owner's access"), so it
 * must open the store and nothing of the server. Checked on the real process: a module-loading
 * hook (node:module register) records every module the command imports.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUILT, cli } from "./serve-process.js";

const canRun = BUILT || process.env.CI === "true";

/** Packages of the server, its HTTP client, token signing, telemetry, pretty logs, MCP and QR codes. */
const NOT_FOR_ADMIN = [
  "fastify",
  "@fastify/formbody",
  "undici",
  "jose",
  "pino",
  "pino-pretty",
  "@opentelemetry/",
  "@modelcontextprotocol/",
  "qrcode",
  "ioredis",
  "cli-table3",
];

describe.runIf(canRun)("admin commands load only what they need", () => {
  let dir: string;
  let config: string;
  let importHook: string;
  let loadedFile: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "mcpgw-admin-start-"));
    config = join(dir, "gateway.yaml");
    writeFileSync(config, JSON.stringify({ data_dir: dir, idp: { type: "local" } }));
    loadedFile = join(dir, "loaded.txt");
    const hooks = join(dir, "hooks.mjs");
    writeFileSync(
      hooks,
      `import { appendFileSync } from "node:fs";
export async function load(url, context, next) {
  appendFileSync(${JSON.stringify(loadedFile)}, url + "\\n");
  return next(url, context);
}
`,
    );
    importHook = join(dir, "register.mjs");
    writeFileSync(
      importHook,
      `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The packages (node_modules/<name>) a command imported, and what it printed. */
  function packagesLoadedBy(args: string[], input?: string) {
    rmSync(loadedFile, { force: true });
    const res = cli([...args, "--config", config], {
      cwd: dir,
      input,
      env: { NODE_OPTIONS: `--import ${importHook}` },
    });
    const urls = readFileSync(loadedFile, "utf8").split("\n").filter(Boolean);
    const packages = new Set(
      urls.flatMap((url) => {
        const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
        return m ? [m[1] as string] : [];
      }),
    );
    return { res, urls, packages };
  }

  const heavy = (packages: Set<string>) =>
    [...packages].filter((p) => NOT_FOR_ADMIN.some((h) => (h.endsWith("/") ? p.startsWith(h) : p === h)));

  it("users add, then users remove: the store and the config, nothing of the server", () => {
    const added = packagesLoadedBy(
      ["admin", "users", "add", "alice", "--password-stdin"],
      "a long password\n",
    );
    expect(added.res.status, added.res.stderr).toBe(0);
    const removed = packagesLoadedBy(["admin", "users", "remove", "alice"]);
    expect(removed.res.status, removed.res.stderr).toBe(0);
    expect(removed.res.stdout).toBe("removed alice\n");
    // The hook saw the command's own modules: the check below is not vacuous.
    expect(removed.urls.some((u) => u.endsWith("/dist/admin/admin-main.js"))).toBe(true);
    expect(removed.packages.has("better-sqlite3")).toBe(true);
    expect(heavy(added.packages)).toEqual([]);
    expect(heavy(removed.packages)).toEqual([]);
  });

  it("starts from the admin bundle: a handful of files, not zod, yaml, commander and dist/cli one by one", () => {
    const removed = packagesLoadedBy(["admin", "users", "remove", "nobody"]);
    expect(removed.res.status).toBe(1);
    expect(removed.res.stderr).toBe("no such user: nobody\n");
    // Bundled (scripts/bundle-admin.mjs): none of these is loaded from its own files.
    for (const bundled of ["zod", "yaml", "commander", "fastest-levenshtein", "@fastify/proxy-addr"]) {
      expect(removed.packages.has(bundled), bundled).toBe(false);
    }
    expect(removed.urls.filter((u) => u.includes("/dist/cli/"))).toEqual([]);
    // The Redis client (bundled into its own chunk) and the signing keys' chunk stay unloaded.
    expect(removed.urls.filter((u) => /\/dist\/admin\/(redis|keys)-[^/]+\.js$/.test(u))).toEqual([]);
    // What is left outside the bundle: node: built-ins, the native SQLite binding, the launcher.
    const files = removed.urls.filter((u) => !u.startsWith("node:"));
    expect(files.length, files.join("\n")).toBeLessThan(15);
  });

  it("a Redis store's client (ioredis, bundled) is loaded only for a Redis store, from a chunk of its own", () => {
    const redisConfig = join(dir, "redis.yaml");
    // Nothing listens on port 9: the command fails to connect, after loading what it needs.
    writeFileSync(
      redisConfig,
      JSON.stringify({
        data_dir: dir,
        store: { type: "redis", redis: { url: "redis://127.0.0.1:9" } },
      }),
    );
    rmSync(loadedFile, { force: true });
    const res = cli(["admin", "users", "list", "--config", redisConfig], {
      cwd: dir,
      env: { NODE_OPTIONS: `--import ${importHook}` },
    });
    expect(res.status).not.toBe(0);
    const urls = readFileSync(loadedFile, "utf8").split("\n").filter(Boolean);
    expect(urls.some((u) => /\/node_modules\/ioredis\//.test(u))).toBe(false);
    expect(urls.some((u) => /\/dist\/admin\/redis-[^/]+\.js$/.test(u))).toBe(true);
  });

  it("a piped list draws no table, so it does not load the table printer either", () => {
    const listed = packagesLoadedBy(["admin", "tokens", "list"]);
    expect(listed.res.status, listed.res.stderr).toBe(0);
    expect(heavy(listed.packages)).toEqual([]);
  });
});
