// `node --import THIS …/conformance/dist/index.js`: on Node 20 only (22 has fs.globSync).
import fs from "node:fs";
import { register } from "node:module";

if (typeof fs.globSync !== "function") register("./node20-hooks.mjs", import.meta.url);
