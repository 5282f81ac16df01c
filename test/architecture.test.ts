/**
 * The layout DESIGN.md promises, checked on the source: no import cycle between folders of
 * src/, and the two sides of the trust boundary never import each other (both use tokens/ and
 * store/ through their interfaces).
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, expect, it } from "vitest";

const SRC = join(import.meta.dirname, "..", "src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** `src/<folder>/…` -> folder; files directly in src/ are the composition root. */
function folderOf(file: string): string {
  const parts = relative(SRC, file).split("/");
  return parts.length > 1 ? (parts[0] as string) : "(root)";
}

/** folder -> folders it imports from. */
function folderGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  const imports = /(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g;
  for (const file of sourceFiles(SRC)) {
    const from = folderOf(file);
    for (const m of readFileSync(file, "utf8").matchAll(imports)) {
      const to = folderOf(normalize(join(dirname(file), m[1] as string)));
      if (to === from) continue;
      if (!graph.has(from)) graph.set(from, new Set());
      graph.get(from)?.add(to);
    }
  }
  return graph;
}

function findCycle(graph: Map<string, Set<string>>): string[] | undefined {
  const done = new Set<string>();
  const visit = (node: string, path: string[]): string[] | undefined => {
    if (path.includes(node)) return [...path.slice(path.indexOf(node)), node];
    if (done.has(node)) return undefined;
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next, [...path, node]);
      if (cycle) return cycle;
    }
    done.add(node);
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node, []);
    if (cycle) return cycle;
  }
  return undefined;
}

describe("source layout", () => {
  const graph = folderGraph();

  it("has no import cycle between folders", () => {
    expect(findCycle(graph)).toBeUndefined();
  });

  it("keeps the authorization server and the resource side apart", () => {
    expect([...(graph.get("gateway") ?? [])]).not.toContain("oauth");
    expect([...(graph.get("oauth") ?? [])]).not.toContain("gateway");
    // The access-token contract depends on neither side.
    expect([...(graph.get("tokens") ?? [])].filter((f) => f === "oauth" || f === "gateway")).toEqual([]);
  });
});
