/**
 * Runs a CommonJS bundle (the admin commands', dist/admin/admin.cjs) with V8's code cache: the
 * bytecode V8 compiled for it in an earlier run, so that a short command does not compile ~600 KB
 * of JavaScript again (Node 20 has no compile cache of its own; Node 22's
 * `module.enableCompileCache()` does not cover a script run through `vm`). The cache is made
 * after the command ran (`script.createCachedData()` at exit), so it holds every function the
 * command reached, not only the top level.
 *
 * A cache file is `MAGIC | sha256(source) | sha256(data) | data`. It is handed to V8 only if both
 * digests match: a cache of another build of the bundle (stale), or a damaged file, is ignored
 * and the bundle is compiled from its source. V8 itself rejects data of another V8 version or
 * other V8 flags; then, too, the bundle is compiled, and a fresh cache is written at exit.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { debuglog } from "node:util";
import { Script } from "node:vm";

const MAGIC = Buffer.from("MCPGWCC1");
const DIGEST = 32;
const HEADER = MAGIC.length + 2 * DIGEST;

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest();
/** `NODE_DEBUG=mcp-gateway`: which cache a run used, and what it wrote (stderr). */
const debug = debuglog("mcp-gateway");

/** The text V8 compiles for a CommonJS file: Node's module wrapper around it. */
export const wrapSource = (source: string) =>
  `(function (exports, require, module, __filename, __dirname) {${source}\n})`;

/** What a cache file of `file` must carry: the digest of exactly the text V8 compiles. */
export const sourceDigest = (file: string) => sha256(wrapSource(readFileSync(file, "utf8")));

export interface CachedRunOptions {
  /** Cache files to try, in order: the first whose digests match is handed to V8. */
  caches: string[];
  /** Where to write a cache when none was accepted (undefined: write none). */
  writeTo?: string;
}

/** How a run used the cache: for tests and the bench. */
export type CacheOutcome = "accepted" | "rejected" | "none";

/** The data of a cache file made for exactly this source, or undefined. */
export function readCache(file: string, sourceDigest: Buffer): Buffer | undefined {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch {
    return undefined;
  }
  if (raw.length <= HEADER || !raw.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  if (!raw.subarray(MAGIC.length, MAGIC.length + DIGEST).equals(sourceDigest)) return undefined;
  const data = raw.subarray(HEADER);
  return raw.subarray(MAGIC.length + DIGEST, HEADER).equals(sha256(data)) ? data : undefined;
}

/** Writes a cache file whole or not at all (a concurrent reader never sees half of one). */
export function writeCache(file: string, sourceDigest: Buffer, data: Buffer): void {
  mkdirSync(dirname(file), { recursive: true });
  const partial = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(partial, Buffer.concat([MAGIC, sourceDigest, sha256(data), data]));
    renameSync(partial, file);
  } finally {
    rmSync(partial, { force: true });
  }
}

/**
 * Compiles and runs the CommonJS file `file` as Node's module loader would (the same wrapper
 * arguments, its own `require`), using and making the code cache as described above.
 */
export function runCached(file: string, options: CachedRunOptions): CacheOutcome {
  const wrapped = wrapSource(readFileSync(file, "utf8"));
  // The cache belongs to this exact text (V8 itself checks only its length).
  const digest = sha256(wrapped);
  let cachedData: Buffer | undefined;
  let from: string | undefined;
  for (const candidate of options.caches) {
    cachedData = readCache(candidate, digest);
    from = candidate;
    if (cachedData) break;
  }
  const script = new Script(wrapped, {
    filename: file,
    cachedData,
  });
  const outcome: CacheOutcome = !cachedData ? "none" : script.cachedDataRejected ? "rejected" : "accepted";
  debug("code cache %s%s", outcome, cachedData ? ` ${from}` : "");
  const writeTo = options.writeTo;
  if (outcome !== "accepted" && writeTo) {
    // At exit: the cache then holds what the command compiled while it ran. A cache that cannot
    // be written (a read-only home, a full disk) only means the next run compiles again.
    process.once("exit", () => {
      try {
        writeCache(writeTo, digest, script.createCachedData());
        debug("code cache written %s", writeTo);
      } catch (err) {
        debug("code cache not written: %s", (err as Error).message);
      }
    });
  }
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  const module = { exports: {}, filename: file, id: file };
  wrapper.call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  return outcome;
}

/**
 * The user's own cache of a bundle, one file per Node version and architecture (the ones V8
 * would reject): `$XDG_CACHE_HOME/mcp-gateway/`, by default `~/.cache/mcp-gateway/`. Not the
 * shared temporary directory: a cache another user could plant there would be run as code.
 */
export function userCacheFile(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "mcp-gateway", `${name}-${process.version}-${process.arch}.v8cache`);
}

/**
 * Runs the admin bundle with the user's own cache of this build, else the one `npm run build`
 * made next to it (valid for the Node it was built with). When neither is accepted (another Node,
 * other V8 flags, a first run), the user's own is written at exit, so the next run has one.
 */
export function runAdminBundle(bundle: string): CacheOutcome {
  const own = userCacheFile("admin");
  return runCached(bundle, { caches: [own, `${bundle}.v8cache`], writeTo: own });
}
