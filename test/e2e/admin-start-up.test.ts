/**
 * What an `admin …` command loads before it does its work: its start-up is most of what an
 * operator waits for when removing a user (bench/RESULTS.md "Ending an owner's access"), so it
 * must open the store and nothing of the server. Checked on the real process: a module-loading
 * hook (node:module register) records every ES module the command imports, and a preload
 * (--require) every CommonJS file and Node built-in it loaded (the launcher, the admin bundle's
 * runner and better-sqlite3 are CommonJS; the bundle itself runs through vm.Script with V8's
 * code cache, src/cli/code-cache.ts).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Script } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sourceDigest, writeCache } from "../../src/cli/code-cache.js";
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
  let requireHook: string;
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
    requireHook = join(dir, "record.cjs");
    writeFileSync(
      requireHook,
      `process.once("exit", () => {
  const { appendFileSync } = require("node:fs");
  const files = Object.keys(require.cache).map((f) => require("node:url").pathToFileURL(f).href);
  const builtins = process.moduleLoadList.filter((m) => m.startsWith("NativeModule ")).map((m) => "node:" + m.slice(13));
  appendFileSync(${JSON.stringify(loadedFile)}, [...files, ...builtins].join("\\n") + "\\n");
});
`,
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The packages (node_modules/<name>) a command imported, and what it printed. */
  function packagesLoadedBy(args: string[], input?: string) {
    rmSync(loadedFile, { force: true });
    const res = cli([...args, "--config", config], {
      cwd: dir,
      input,
      env: { NODE_OPTIONS: hooks() },
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

  const hooks = () => `--import ${importHook} --require ${requireHook}`;

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
    // The hooks saw the command's own files: the check below is not vacuous.
    expect(removed.urls.some((u) => u.endsWith("/dist/admin/code-cache.cjs"))).toBe(true);
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
    // The Redis client (bundled, run only when reached) did not run: it is what loads node:tls.
    expect(removed.urls).not.toContain("node:tls");
    // What is left outside the bundle: node: built-ins, better-sqlite3, the launcher and runner.
    // (The CommonJS preload now shows better-sqlite3's own ~14 files, which the ES module hook
    // alone did not: counted apart.)
    const files = removed.urls.filter(
      (u) => !u.startsWith("node:") && !u.includes("/node_modules/better-sqlite3/"),
    );
    expect(files.length, files.join("\n")).toBeLessThan(8);
  });

  it("a Redis store's client (ioredis, bundled) runs only for a Redis store, and SQLite's does not", () => {
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
      env: { NODE_OPTIONS: hooks() },
    });
    expect(res.status).not.toBe(0);
    const urls = readFileSync(loadedFile, "utf8").split("\n").filter(Boolean);
    expect(urls.some((u) => /\/node_modules\/ioredis\//.test(u))).toBe(false);
    expect(urls).toContain("node:tls");
    expect(urls.some((u) => /\/node_modules\/better-sqlite3\//.test(u))).toBe(false);
  });

  it("a piped list draws no table, so it does not load the table printer either", () => {
    const listed = packagesLoadedBy(["admin", "tokens", "list"]);
    expect(listed.res.status, listed.res.stderr).toBe(0);
    expect(heavy(listed.packages)).toEqual([]);
  });

  describe("V8's code cache of the admin bundle", () => {
    const bundle = join(process.cwd(), "dist/admin/admin.cjs");
    /** Runs a command with its own cache directory; returns what the runner said it did. */
    function run(xdg: string, args: string[]) {
      const res = cli([...args, "--config", config], {
        cwd: dir,
        env: { XDG_CACHE_HOME: xdg, NODE_DEBUG: "mcp-gateway" },
      });
      const said = res.stderr.split("\n").filter((l) => /^MCP-GATEWAY \d+: code cache/.test(l));
      const rest = res.stderr.split("\n").filter((l) => l && !/^MCP-GATEWAY \d+:/.test(l));
      return { ...res, said: said.map((l) => l.replace(/^MCP-GATEWAY \d+: /, "")), rest };
    }
    const own = (xdg: string) => join(xdg, "mcp-gateway", `admin-${process.version}-${process.arch}.v8cache`);

    it("uses the cache the build made, and writes none of its own", () => {
      const xdg = mkdtempSync(join(dir, "xdg-"));
      const res = run(xdg, ["admin", "users", "list"]);
      expect(res.status, res.stderr).toBe(0);
      expect(res.said).toEqual([`code cache accepted ${bundle}.v8cache`]);
      expect(() => readFileSync(own(xdg))).toThrow();
    });

    it("ignores a damaged or stale cache (the bundle is compiled from its source), with the same output", () => {
      const xdg = mkdtempSync(join(dir, "xdg-"));
      const reference = run(xdg, ["admin", "users", "remove", "nobody"]);
      mkdirSync(join(xdg, "mcp-gateway"), { recursive: true });
      // Damaged: the right header for this bundle, one byte of the data changed.
      const good = readFileSync(`${bundle}.v8cache`);
      const damaged = Buffer.from(good);
      damaged[damaged.length - 100] = (damaged[damaged.length - 100] as number) ^ 0xff;
      writeFileSync(own(xdg), damaged);
      const a = run(xdg, ["admin", "users", "remove", "nobody"]);
      expect(a.said).toEqual([`code cache accepted ${bundle}.v8cache`]);
      // Stale: a whole, valid cache file, made for another build of the bundle.
      writeCache(own(xdg), Buffer.alloc(32, 7), good.subarray(72));
      const b = run(xdg, ["admin", "users", "remove", "nobody"]);
      expect(b.said).toEqual([`code cache accepted ${bundle}.v8cache`]);
      for (const r of [a, b]) {
        expect([r.status, r.stdout, r.rest]).toEqual([reference.status, reference.stdout, reference.rest]);
      }
      expect(reference.status).toBe(1);
      expect(reference.rest).toEqual(["no such user: nobody"]);
    });

    it("data V8 rejects (another script's): compiled from source, the user's cache written, then used", () => {
      const xdg = mkdtempSync(join(dir, "xdg-"));
      const other = new Script("(function () { return 1; })").createCachedData();
      writeCache(own(xdg), sourceDigest(bundle), other);
      const first = run(xdg, ["admin", "users", "list", "--user", "nobody"]);
      expect(first.status, first.stderr).toBe(0);
      expect(first.said).toEqual([`code cache rejected ${own(xdg)}`, `code cache written ${own(xdg)}`]);
      const second = run(xdg, ["admin", "users", "list", "--user", "nobody"]);
      expect(second.said).toEqual([`code cache accepted ${own(xdg)}`]);
      expect([second.status, second.stdout]).toEqual([first.status, first.stdout]);
    });
  });
});
