/**
 * The snippets of README.md's "Deploy" part, as the tests that run them read them: each fenced
 * block there is preceded by `<!-- snippet: NAME -->`, and is returned dedented (blocks inside a
 * numbered step are indented with it).
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

export interface Snippet {
  name: string;
  /** The fence's info string (sh, yaml, caddyfile, nginx…). */
  lang: string;
  body: string;
  /** The `### ` heading it is under. */
  section: string;
}

const README = resolve(import.meta.dirname, "../../README.md");

/** The text of one `## ` part of the README, up to the next `## ` heading. */
export function readmePart(heading: string, text = readFileSync(README, "utf8")): string {
  const start = text.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README.md has no "## ${heading}"`);
  const end = text.indexOf("\n## ", start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

/** Every fenced block of `part`: its heading, whether a snippet marker names it, and the block. */
export function fencedBlocks(
  part: string,
): Array<{ section: string; name?: string; lang: string; body: string }> {
  const blocks: Array<{ section: string; name?: string; lang: string; body: string }> = [];
  const lines = part.split("\n");
  let section = "";
  let marker: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.startsWith("### ")) section = line.slice(4).trim();
    const named = /^\s*<!-- snippet: (\S+) -->\s*$/.exec(line);
    if (named) {
      marker = named[1];
      continue;
    }
    const open = /^(\s*)```(\S*)\s*$/.exec(line);
    if (!open) {
      if (line.trim() !== "") marker = undefined;
      continue;
    }
    const indent = open[1] as string;
    const body: string[] = [];
    for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i] as string); i++) {
      const inner = lines[i] as string;
      body.push(inner.startsWith(indent) ? inner.slice(indent.length) : inner.trimStart());
    }
    blocks.push({ section, name: marker, lang: open[2] as string, body: `${body.join("\n")}\n` });
    marker = undefined;
  }
  return blocks;
}

/** The named snippets of README.md's "Deploy" part. */
export function deploySnippets(): Map<string, Snippet> {
  const snippets = new Map<string, Snippet>();
  for (const block of fencedBlocks(readmePart("Deploy"))) {
    if (!block.name) continue;
    if (snippets.has(block.name)) throw new Error(`two README snippets are named ${block.name}`);
    snippets.set(block.name, { ...block, name: block.name });
  }
  return snippets;
}

/** The snippet called `name`; throws when the README has none (a test must not pass on nothing). */
export function snippet(snippets: Map<string, Snippet>, name: string): Snippet {
  const found = snippets.get(name);
  if (!found) throw new Error(`README.md's Deploy part has no snippet ${name}`);
  return found;
}

/** The shell lines of a snippet: comments dropped, no blank lines. */
export function commandLines(body: string): string[] {
  return body
    .split("\n")
    .map((line) => line.replace(/\s+#.*$/, "").trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
}
