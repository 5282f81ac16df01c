#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm install` through `prepare`).
// CommonJS (bin/package.json): a short command does not pay for starting Node's ES module loader.

// Node 22.1+ keeps V8's compiled code of the modules between runs (most of a short command's
// start-up is compiling them). Node 20 has no such switch: there this is a no-op.
require("node:module").enableCompileCache?.();
const { existsSync } = require("node:fs");
const { join } = require("node:path");

// `admin …` starts from its bundle: one script instead of about 250 files, run with V8's code
// cache (dist/admin/, made by `npm run build`; src/cli/code-cache.ts). A dist/ compiled without
// it runs the same commands from dist/cli/.
const admin = join(__dirname, "../dist/admin/admin.cjs");
if (process.argv[2] === "admin" && existsSync(admin)) {
  require("../dist/admin/code-cache.cjs").runAdminBundle(admin);
} else {
  import("../dist/cli/main.js");
}
