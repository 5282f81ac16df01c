/**
 * The services in the box, as the raw `services:` config tree (what YAML would give; the config
 * schema validates it). npm servers run from node_modules with this Node (no npx, no download at
 * run time); native servers run from the compiled JS next to this module, or from source via tsx.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const require = createRequire(import.meta.url);

/** Entry file of an installed npm package, or undefined when it is not installed. */
function packageFile(specifier: string): string | undefined {
  try {
    return require.resolve(specifier);
  } catch {
    return undefined;
  }
}

/** Command and args for a native service module (`time`, `fetch`) in this directory. */
export function nativeServiceCommand(name: string): { command: string; args: string[] } {
  // `../services/`: the same directory from here and from the admin bundle (dist/admin/).
  const js = fileURLToPath(new URL(`../services/${name}.js`, import.meta.url));
  if (existsSync(js)) return { command: process.execPath, args: [js] };
  // Running from source (tsx, vitest): load TypeScript through tsx, resolved from this package.
  const ts = fileURLToPath(new URL(`../services/${name}.ts`, import.meta.url));
  // tsx's one export ("." -> dist/loader.mjs), as a file URL so any working directory will do.
  const tsxLoader = join(dirname(require.resolve("tsx/package.json")), "dist", "loader.mjs");
  return { command: process.execPath, args: ["--import", pathToFileURL(tsxLoader).href, ts] };
}

function npmService(specifier: string, extraArgs: string[] = []): { command: string; args: string[] } {
  const entry = packageFile(specifier);
  if (!entry) throw new Error(`built-in service package missing: ${specifier} (run npm install)`);
  return { command: process.execPath, args: [entry, ...extraArgs] };
}

/** Chromium switches that keep a headless browser quiet: no GPU, no update, sync or other background traffic. */
const QUIET_CHROMIUM_ARGS = [
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/**
 * @playwright/mcp on the system Chromium, headless, no sandbox, profile in memory. Its launch
 * switches only go through a config file, written here as `<data>/playwright/config.json`; the
 * same directory is its working directory (where named files land) and holds `output/`.
 */
function playwrightService(data: string, prepare: boolean): { command: string; args: string[]; cwd: string } {
  const dir = join(data, "playwright");
  const executablePath = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
  const config = {
    browser: {
      browserName: "chromium",
      isolated: true,
      launchOptions: { headless: true, chromiumSandbox: false, executablePath, args: QUIET_CHROMIUM_ARGS },
    },
    outputDir: join(dir, "output"),
  };
  const configFile = join(dir, "config.json");
  if (prepare) {
    mkdirSync(join(dir, "output"), { recursive: true });
    writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`);
  }
  // The package exports only "." and "./package.json"; its CLI sits next to the latter.
  const pkg = packageFile("@playwright/mcp/package.json");
  return pkg
    ? { command: process.execPath, args: [join(dirname(pkg), "cli.js"), "--config", configFile], cwd: dir }
    : { command: "playwright-mcp", args: ["--config", configFile], cwd: dir };
}

/**
 * The native tmux server on its own socket under the data directory, or on `tmux -L mcp-gateway`
 * when that path is too long for a Unix socket (108 bytes).
 */
function tmuxService(data: string): { command: string; args: string[] } {
  const { command, args } = nativeServiceCommand("tmux");
  const socket = join(data, "tmux", "tmux.sock");
  return Buffer.byteLength(socket) < 100
    ? { command, args: [...args, "--socket", socket] }
    : { command, args: [...args, "--socket-name", "mcp-gateway"] };
}

/**
 * The default `services:` tree. `dataDir` holds the filesystem sandbox's `workspace/` and the
 * memory server's file. `prepare` (the default) creates the workspace and the browser's config
 * file, which the services need to run; without it the tree is only described (config show).
 */
export function builtinServices(dataDir: string, { prepare = true } = {}): Record<string, unknown> {
  const data = resolve(dataDir);
  const workspace = join(data, "workspace");
  if (prepare) {
    // data_dir also holds the database and the sealing secret: private to the gateway's user.
    mkdirSync(data, { recursive: true, mode: 0o700 });
    mkdirSync(workspace, { recursive: true });
  }
  return {
    everything: {
      title: "Everything (MCP test server)",
      ...npmService("@modelcontextprotocol/server-everything/dist/index.js", ["stdio"]),
      enabled: true,
    },
    filesystem: {
      title: "Filesystem (sandboxed workspace)",
      ...npmService("@modelcontextprotocol/server-filesystem/dist/index.js", [workspace]),
      enabled: true,
    },
    memory: {
      title: "Memory (knowledge graph)",
      ...npmService("@modelcontextprotocol/server-memory/dist/index.js"),
      env: { MEMORY_FILE_PATH: join(data, "memory.jsonl") },
      // One file, so one writer: a shared child avoids sessions overwriting each other.
      session_mode: "shared",
      enabled: true,
    },
    "sequential-thinking": {
      title: "Sequential thinking",
      ...npmService("@modelcontextprotocol/server-sequential-thinking/dist/index.js"),
      env: { DISABLE_THOUGHT_LOGGING: "true" },
      enabled: true,
    },
    time: {
      title: "Time and time zones",
      ...nativeServiceCommand("time"),
      // Stateless: one child serves every session.
      session_mode: "shared",
      enabled: true,
    },
    fetch: {
      title: "Fetch web pages",
      ...nativeServiceCommand("fetch"),
      session_mode: "shared",
      enabled: true,
    },
    playwright: { title: "Browser (Playwright)", ...playwrightService(data, prepare), enabled: false },
    tmux: {
      title: "tmux terminal sessions",
      ...tmuxService(data),
      // The state lives in the tmux server; one child serves every session.
      session_mode: "shared",
      enabled: false,
    },
  };
}
