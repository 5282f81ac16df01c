/**
 * The package as npm delivers it, with no dev dependency anywhere near it:
 *
 *   npm pack                                   (runs `prepare`: tsc -> dist/)
 *   npm install -g --allow-scripts=better-sqlite3 --prefix DIR ./mcp-oauth-gateway-*.tgz
 *   DIR/bin/mcp-gateway serve | config check
 *
 * The pack runs in a copy of the package's sources (their node_modules linked in for the
 * compiler), so the compile cannot rewrite dist/ under other test files that run it. The
 * install is the real one from the npm registry, with one difference from a user's machine:
 * better-sqlite3's install script (`prebuild-install || node-gyp rebuild`) would download a
 * prebuilt binary from GitHub, which this network cannot reach, and then compile SQLite for
 * minutes. prebuild-install's own `local-prebuilds` setting hands it the binary this checkout
 * compiled from the same release instead (same Node ABI); if npm picks another release, the
 * name does not match and it compiles, which is slower but still the real path.
 *
 * The Dockerfile's build stage is this same pack-and-install (into /opt/mcp-gateway).
 */
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accessTokenFor } from "../support/login.js";
import { DEFAULT_SERVICES, serviceCalls } from "../support/service-calls.js";
import { runToEnd, type Spawned, startProcess } from "../support/spawned.js";
import { freePort } from "../support/upstream.js";

const ROOT = resolve(import.meta.dirname, "../..");
const PKG = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  name: string;
  version: string;
  files: string[];
  devDependencies: Record<string, string>;
};
const NPM = "npm";

/**
 * A user's shell on this machine: its environment (the CA bundle the network needs among it)
 * without the gateway's or the Python gateway's variables, without the npm_* settings that
 * `npm test` hands its children, and without node_modules/.bin on PATH.
 */
function userEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (
      /^(MCP_|GITHUB_|REDIS_|BASE_DOMAIN|ALLOWED_GITHUB_USERS|CLIENT_LIFETIME|ACCESS_TOKEN|REFRESH_TOKEN|npm_|VITEST|NODE_OPTIONS)/i.test(
        k,
      )
    )
      continue;
    env[k] = v;
  }
  env.PATH = (process.env.PATH ?? "/usr/bin:/bin")
    .split(":")
    .filter((p) => !p.includes("node_modules"))
    .join(":");
  // HOME is the user's own, but npm's settings (~/.npmrc) stay this machine's.
  const npmrc = join(process.env.HOME ?? "/root", ".npmrc");
  return { ...env, HOME: home, ...(existsSync(npmrc) ? { npm_config_userconfig: npmrc } : {}), ...extra };
}

/** better-sqlite3's compiled addon from this checkout, named the way prebuild-install looks for it. */
function localPrebuild(dir: string): string {
  const addon = join(ROOT, "node_modules/better-sqlite3");
  const version = (JSON.parse(readFileSync(join(addon, "package.json"), "utf8")) as { version: string })
    .version;
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}

// Bounds for a busy machine (the compile alone took over 2 minutes on a 2-core machine at load
// 17); on a quiet one, pack and install take well under a minute each.
describe("npm pack, npm install -g, mcp-gateway serve", { timeout: 120_000 }, () => {
  let work: string;
  let prefix: string;
  let tarball: string;
  let packed: string[];
  let gateway: Spawned | undefined;
  let installOutput: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "mcpgw-pack-"));
    const home = join(work, "home");
    mkdirSync(home);
    // A user's npm cache is theirs; the tests share the machine's so the registry is asked
    // only for what the project's own install did not already fetch.
    const npmCache = process.env.npm_config_cache ?? join(process.env.HOME ?? "/root", ".npm");

    const source = join(work, "source");
    mkdirSync(source);
    for (const entry of [
      "package.json",
      "README.md",
      "tsconfig.json",
      "tsconfig.build.json",
      "bin",
      "src",
      "scripts",
      "deploy",
    ]) {
      cpSync(join(ROOT, entry), join(source, entry), { recursive: true });
    }
    symlinkSync(join(ROOT, "node_modules"), join(source, "node_modules"), "dir");
    const out = join(work, "out");
    mkdirSync(out);
    let started = Date.now();
    const pack = await runToEnd(
      NPM,
      ["pack", "--json", "--pack-destination", out],
      {
        cwd: source,
        env: userEnv(home, { npm_config_cache: npmCache }),
      },
      300_000,
    );
    expect(pack.status, pack.stderr).toBe(0);
    // For the record (not a bound): the two steps' times on this machine.
    console.log(`npm pack: ${Date.now() - started} ms`);
    const report = JSON.parse(pack.stdout.slice(pack.stdout.indexOf("["))) as Array<{
      filename: string;
      files: Array<{ path: string }>;
    }>;
    tarball = join(out, report[0]?.filename ?? "");
    packed = report[0]?.files.map((f) => f.path) ?? [];

    const prebuilds = join(work, "prebuilds");
    const prebuilt = localPrebuild(prebuilds);
    const tar = await runToEnd(
      "tar",
      [
        "-czf",
        prebuilt,
        "-C",
        join(ROOT, "node_modules/better-sqlite3"),
        "build/Release/better_sqlite3.node",
      ],
      {},
    );
    expect(tar.status, tar.stderr).toBe(0);

    prefix = join(work, "prefix");
    started = Date.now();
    const install = await runToEnd(
      NPM,
      // --allow-scripts: npm 11.16+ asks which install scripts a global install may run (npm 12
      // runs none unless allowed); better-sqlite3's builds the SQLite binding.
      [
        "install",
        "-g",
        "--allow-scripts=better-sqlite3",
        "--prefix",
        prefix,
        "--no-audit",
        "--no-fund",
        tarball,
      ],
      {
        cwd: work,
        // prebuild-install's `local-prebuilds` for this package (its rc name, `prebuild-install_…`,
        // has a dash, which the install script's /bin/sh drops from the environment).
        env: userEnv(home, {
          npm_config_cache: npmCache,
          npm_config_better_sqlite3_local_prebuilds: prebuilds,
        }),
      },
      300_000,
    );
    expect(install.status, `${install.stdout}\n${install.stderr}`).toBe(0);
    installOutput = `${install.stdout}\n${install.stderr}`;
    console.log(`npm install -g: ${Date.now() - started} ms`);
  }, 660_000);

  afterAll(async () => {
    await gateway?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("packs the compiled dist/, bin/ and deploy/ (the `files` list), and no sources or tests", () => {
    expect(packed).toContain("dist/cli/main.js");
    expect(packed).toContain("dist/services/time.js");
    // The admin commands' bundle (scripts/bundle-admin.mjs, run by `prepare`).
    expect(packed).toContain("dist/admin/admin.cjs");
    // Its V8 code cache (made by the build, for the Node that built it) and what runs it.
    expect(packed).toContain("dist/admin/admin.cjs.v8cache");
    expect(packed).toContain("dist/admin/code-cache.cjs");
    expect(packed).toContain("bin/package.json");
    expect(packed).toContain("bin/mcp-gateway.js");
    expect(packed).toContain("deploy/compose/compose.yaml");
    expect(packed).toContain("deploy/compose/.env.example");
    expect(packed).toContain("deploy/compose/Caddyfile");
    expect(packed).toContain("deploy/systemd/mcp-gateway.service");
    expect(packed.filter((p) => p.startsWith("src/") || p.startsWith("test/"))).toEqual([]);
    expect(packed.some((p) => p.endsWith(".ts") && !p.endsWith(".d.ts"))).toBe(false);
  });

  it("installs production dependencies only: no compiler, test runner or linter, and `prepare` did not run", () => {
    const installed = join(prefix, "lib/node_modules", PKG.name);
    expect(existsSync(join(prefix, "bin/mcp-gateway"))).toBe(true);
    const modules = readdirSync(join(installed, "node_modules"));
    for (const dev of [
      "typescript",
      "vitest",
      "tsx",
      "@biomejs",
      "fast-check",
      "autocannon",
      "dockerfile-ast",
      "esbuild",
    ]) {
      expect(modules, dev).not.toContain(dev);
    }
    // `prepare` (tsc) would need typescript; the install shows it was never run: dist/ is the packed one.
    expect(existsSync(join(installed, "tsconfig.build.json"))).toBe(false);
    expect(existsSync(join(installed, "node_modules/better-sqlite3/build/Release/better_sqlite3.node"))).toBe(
      true,
    );
    // The one install script the package needs was allowed: npm has nothing left to ask about it.
    expect(installOutput).not.toMatch(/better-sqlite3@[\d.]+ \(install:/);
  });

  it("`mcp-gateway config check` works from the installed package", async () => {
    const dir = mkdtempSync(join(work, "check-"));
    const ok = await runToEnd(join(prefix, "bin/mcp-gateway"), ["config", "check"], {
      cwd: dir,
      env: userEnv(dir),
    });
    expect(ok.stdout + ok.stderr).toContain("config ok");
    expect(ok.status).toBe(0);
    const bad = await runToEnd(join(prefix, "bin/mcp-gateway"), ["config", "check"], {
      cwd: dir,
      env: userEnv(dir, { MCP_GATEWAY_TOKENS__ACCESS_TTL: "soon" }),
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("tokens.access_ttl");
  });

  it("`mcp-gateway admin users` works from the installed package (the bundle, without dev dependencies)", async () => {
    const dir = mkdtempSync(join(work, "admin-"));
    const add = await runToEnd(join(prefix, "bin/mcp-gateway"), ["admin", "users", "add", "ada"], {
      cwd: dir,
      env: userEnv(dir),
    });
    expect(add.status, add.stderr).toBe(0);
    expect(add.stdout).toMatch(/^added ada with password \S+\n$/);
    const list = await runToEnd(join(prefix, "bin/mcp-gateway"), ["admin", "users", "list"], {
      cwd: dir,
      env: userEnv(dir, { NODE_DEBUG: "mcp-gateway" }),
    });
    expect(list.status, list.stderr).toBe(0);
    // Same Node as the pack: the packed cache is used as it is.
    expect(list.stderr).toMatch(/code cache accepted \S+\/dist\/admin\/admin\.cjs\.v8cache\n/);
    expect(JSON.parse(list.stdout)).toMatchObject({ name: "ada" });
  });

  it("`mcp-gateway serve` answers /healthz and the OAuth metadata, and the services in the box run", async () => {
    const dir = mkdtempSync(join(work, "serve-"));
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    gateway = startProcess(
      join(prefix, "bin/mcp-gateway"),
      ["serve", "--port", String(port), "--public-url", base],
      {
        cwd: dir,
        env: userEnv(dir),
      },
    );
    const [, password] = (await gateway.waitFor(/password (\S+)/, 60_000)) as RegExpMatchArray;
    expect(gateway.output()).toContain(`store:    sqlite ${join(dir, "data", "gateway.db")}`);

    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    const meta = (await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      unknown
    >;
    expect(meta.issuer).toBe(base);
    expect(meta.token_endpoint).toBe(`${base}/token`);

    // The stdio servers come from the installed package's node_modules and its compiled dist/.
    const { accessToken } = await accessTokenFor(
      base,
      DEFAULT_SERVICES.map((s) => `${base}/${s}/mcp`),
      { username: "admin", password: password as string },
    );
    const calls = serviceCalls(join(dir, "data"), "http://127.0.0.1:9/");
    for (const name of DEFAULT_SERVICES) {
      const client = new Client({ name: "packaging-test", version: "1.0.0" });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${base}/${name}/mcp`), {
          requestInit: { headers: { authorization: `Bearer ${accessToken}` } },
        }),
      );
      try {
        expect((await client.listTools()).tools.length, name).toBeGreaterThan(0);
        // fetch would need a reachable public page; its tools/list above shows it runs.
        if (name !== "fetch") await calls[name]?.(client);
      } finally {
        await client.close();
      }
    }
    expect(await gateway.stop()).toBe(0);
  });
});
