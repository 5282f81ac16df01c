#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm install` through `prepare`).
import module from "node:module";

// Node 22.1+ keeps V8's compiled code of the modules between runs (most of a short command's
// start-up is compiling them). Node 20 has no such switch: there this is a no-op.
module.enableCompileCache?.();
await import("../dist/cli/main.js");
