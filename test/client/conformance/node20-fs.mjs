// `fs` for the conformance package on Node 20: its bundle imports `globSync`, which `fs` has
// only from Node 22. It uses it for one pattern, `**/NAME` (reading result files), which this
// walks by hand; the rest of `fs` is Node's own.
import fs, { readdirSync } from "node:fs";
import { join, relative } from "node:path";

export * from "node:fs";
export default fs;

export function globSync(pattern, options = {}) {
  const match = /^\*\*\/([^*?[\]{}/]+)$/.exec(pattern);
  if (!match) throw new Error(`globSync shim: only **/NAME patterns are supported, not ${pattern}`);
  const cwd = options.cwd ?? process.cwd();
  const found = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name === match[1]) found.push(relative(cwd, path));
    }
  };
  walk(cwd);
  return found;
}
