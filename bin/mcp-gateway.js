#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm install` through `prepare`).
import { existsSync } from "node:fs";
import module from "node:module";

// Node 22.1+ keeps V8's compiled code of the modules between runs (most of a short command's
// start-up is compiling them). Node 20 has no such switch: there this is a no-op.
module.enableCompileCache?.();
// `admin …` starts from its bundle (a few files instead of about 250: dist/admin/, made by
// `npm run build`); a dist/ compiled without it runs the same commands from dist/cli/.
const admin = new URL("../dist/admin/admin-main.js", import.meta.url);
if (process.argv[2] === "admin" && existsSync(admin)) await import(admin.href);
else await import("../dist/cli/main.js");
