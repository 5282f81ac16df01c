// The admin commands' bundle (src/cli/admin-main.ts -> dist/admin/admin.cjs), run by `npm run
// build`, and the V8 code cache of it (dist/admin/admin.cjs.v8cache, src/cli/code-cache.ts).
// One CommonJS script, so that bin/mcp-gateway.js can run it through `vm.Script` with V8's code
// cache (Node 20 caches no ES module's code). What a command reaches only sometimes (the Redis
// store with ioredis, the built-in services) is in it too, but run only when reached (esbuild's
// lazy module wrappers for dynamic imports), as are the signing keys with jose (`admin keys`
// only; an ES module a CommonJS bundle could not require, and a script run through `vm` cannot
// `import()` on Node 20 without --experimental-vm-modules). Not bundled: native and server-only
// packages, and cli-table3 (required when a table is drawn).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

/**
 * zod's `locales` namespace (the messages of ~50 languages, a third of the bundle) is exported by
 * `z` but never read here: its messages are English (zod registers `en` itself). Bundled as just
 * that one locale.
 */
const englishOnly = {
  name: "zod-english-only",
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]v4[\\/]/.test(args.importer)
        ? { path: join(dirname(args.importer), "../locales/index.js"), namespace: "english-only" }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "english-only" }, (args) => ({
      contents: 'export { default as en } from "./en.js";',
      resolveDir: dirname(args.path),
      loader: "js",
    }));
  },
};

const outdir = fileURLToPath(new URL("../dist/admin/", import.meta.url));
const bundle = join(outdir, "admin.cjs");
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: [fileURLToPath(new URL("../src/cli/admin-main.ts", import.meta.url))],
  outfile: bundle,
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  minify: true,
  keepNames: true,
  // The sources are ES modules: `import.meta.url` is this file's URL, as it would be theirs.
  define: { "import.meta.url": "__bundle_url" },
  banner: { js: 'var __bundle_url = require("node:url").pathToFileURL(__filename).href;' },
  external: [
    "better-sqlite3",
    "cli-table3",
    "fastify",
    "undici",
    "pino",
    "pino-pretty",
    "@opentelemetry/*",
    "@modelcontextprotocol/*",
    "qrcode",
  ],
  plugins: [englishOnly],
  logLevel: "warning",
});

// What runs it (bin/mcp-gateway.js requires it: CommonJS, so that no ES module loader starts).
await build({
  entryPoints: [fileURLToPath(new URL("../src/cli/code-cache.ts", import.meta.url))],
  outfile: join(outdir, "code-cache.cjs"),
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  logLevel: "warning",
});

/**
 * The code cache, made by running the bundle as an operator would: a user added, then removed
 * (the removal's run writes it, holding what that command compiled), on a throwaway SQLite store.
 */
const work = mkdtempSync(join(tmpdir(), "mcpgw-code-cache-"));
try {
  const config = join(work, "gateway.yaml");
  writeFileSync(config, JSON.stringify({ data_dir: work }));
  const run = (args, writeTo) => {
    // argv as bin/mcp-gateway.js has it: [node, script, ...args].
    const code = `process.argv.splice(1, 0, ${JSON.stringify(bundle)});
require(${JSON.stringify(join(outdir, "code-cache.cjs"))}).runCached(${JSON.stringify(bundle)}, { caches: [], writeTo: ${JSON.stringify(writeTo)} });`;
    const res = spawnSync(process.execPath, ["-e", code, ...args, "--config", config], {
      cwd: work,
      input: "a password only for this build\n",
      encoding: "utf8",
      env: { PATH: process.env.PATH, HOME: work },
    });
    if (res.status !== 0) throw new Error(`admin ${args.join(" ")}: ${res.stderr}`);
  };
  run(["admin", "users", "add", "code-cache", "--password-stdin"], undefined);
  run(["admin", "users", "remove", "code-cache"], `${bundle}.v8cache`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
