/**
 * Rewrites the README's "Connect a client" section from src/web/snippets.ts (the same data as
 * `mcp-gateway config client` and the landing page). test/web/snippets.test.ts fails when the
 * README and the module disagree; this brings them back together: `npm run readme:snippets`.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { EXAMPLE_URL, readmeSection } from "../src/web/snippets.js";

const HEADING = "\n## Connect a client\n";
const path = resolve(import.meta.dirname, "..", "README.md");
const readme = readFileSync(path, "utf8");
const start = readme.indexOf(HEADING);
if (start < 0) throw new Error(`README.md has no "${HEADING.trim()}" section to rewrite`);
const bodyStart = start + HEADING.length;
const next = readme.indexOf("\n## ", bodyStart);
const after = next < 0 ? "" : readme.slice(next);
writeFileSync(path, `${readme.slice(0, bodyStart)}\n${readmeSection(EXAMPLE_URL).trim()}\n${after}`);
