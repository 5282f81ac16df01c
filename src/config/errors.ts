/**
 * One line for a config error: the key, where it came from (the environment variable, or the
 * file for a key the schema does not know), and for an unknown key the nearest one there is.
 */
import { distance } from "fastest-levenshtein";
import {
  ZodDefault,
  ZodNullable,
  ZodObject,
  ZodOptional,
  ZodPipe,
  ZodPrefault,
  ZodRecord,
  type z,
} from "zod";
import { configSchema } from "./schema.js";

/** Dotted key path -> where its value came from, e.g. `from MCP_GATEWAY_TOKENS__ACCESS_TTL`. */
export type Origins = Map<string, string>;

type Issue = z.core.$ZodIssue;
type Path = ReadonlyArray<PropertyKey>;

const dotted = (path: Path): string => path.map(String).join(".");

/** The schema under default/optional/transform wrappers. */
function unwrap(schema: unknown): unknown {
  let node = schema;
  for (;;) {
    if (
      node instanceof ZodDefault ||
      node instanceof ZodPrefault ||
      node instanceof ZodOptional ||
      node instanceof ZodNullable
    )
      node = node.unwrap();
    else if (node instanceof ZodPipe) node = node.in;
    else return node;
  }
}

/** The keys the schema allows at `path` (a service name stands for any service). */
function keysAt(path: Path): string[] {
  let node = unwrap(configSchema);
  for (const part of path) {
    if (node instanceof ZodObject) node = unwrap((node.shape as Record<string, unknown>)[String(part)]);
    else if (node instanceof ZodRecord) node = unwrap(node.valueType);
    else return [];
  }
  return node instanceof ZodObject ? Object.keys(node.shape) : [];
}

/** Every key path under `path`, as the words an environment variable would spell it with `_`. */
function flatKeys(path: Path): string[][] {
  return keysAt(path).flatMap((key) => {
    const below = flatKeys([...path, key]);
    return below.length ? below.map((rest) => [key, ...rest]) : [[key]];
  });
}

/**
 * The nearest valid key at that level by edit distance, if near enough to be a slip. An
 * environment variable with `_` where `__` was meant (MCP_GATEWAY_TOKENS_ACCESS_TTL) is matched
 * against the nested keys too.
 */
function nearestKey(parent: Path, key: string): string | undefined {
  const candidates = keysAt(parent);
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const d = distance(key, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  if (best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 4))) return best;
  const nested = flatKeys(parent).find((words) => words.length > 1 && words.join("_") === key);
  return nested?.join(".");
}

/** Where the value at `path` came from: an ancestor or the key itself set by env, else a key under it. */
function originOf(path: Path, origins: Origins | undefined): string | undefined {
  if (!origins) return undefined;
  for (let n = path.length; n > 0; n--) {
    const origin = origins.get(dotted(path.slice(0, n)));
    if (origin) return origin;
  }
  const prefix = path.length ? `${dotted(path)}.` : "";
  for (const [key, origin] of origins) if (key.startsWith(prefix)) return origin;
  return undefined;
}

/** `key (from VAR): message`, or for an unknown key `unknown key a.b (from VAR); did you mean a.c?`. */
export function describeIssue(issue: Issue, where: { origins?: Origins; file?: string }): string {
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0] as string;
    const full = [...issue.path, key];
    const origin = originOf(full, where.origins) ?? (where.file ? `in ${where.file}` : undefined);
    const nearest = nearestKey(issue.path, key);
    const more = issue.keys.length > 1 ? ` (and ${issue.keys.slice(1).join(", ")})` : "";
    return (
      `unknown key ${dotted(full)}${origin ? ` (${origin})` : ""}${more}` +
      (nearest ? `; did you mean ${dotted([...issue.path, nearest])}?` : "")
    );
  }
  const key = issue.path.length ? dotted(issue.path) : "(top level)";
  const origin = issue.path.length ? originOf(issue.path, where.origins) : undefined;
  let message = issue.message;
  // A bad record key (a service name) carries the real reason one level down.
  if (issue.code === "invalid_key") message = issue.issues[0]?.message ?? message;
  return `${key}${origin ? ` (${origin})` : ""}: ${message}`;
}
