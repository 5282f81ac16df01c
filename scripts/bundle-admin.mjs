// The admin commands' bundle (src/cli/admin-main.ts -> dist/admin/), run by `npm run build`.
// Dynamic imports become chunks of their own, loaded only when reached: the Redis store with
// ioredis (bundled too: ~40 files of its own), the signing keys. Not bundled: native and
// server-only packages, jose (`admin keys` only) and cli-table3 (required when a table is drawn).
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
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

const outdir = new URL("../dist/admin/", import.meta.url).pathname;
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: [new URL("../src/cli/admin-main.ts", import.meta.url).pathname],
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  minify: true,
  keepNames: true,
  // CommonJS packages inside an ES module bundle call require(): give them Node's.
  banner: {
    js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);',
  },
  external: [
    "better-sqlite3",
    "jose",
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
