/**
 * Every fenced block of README.md is one a test runs or checks. The Deploy part has its own
 * inventory (test/e2e/deploy-recipes.test.ts, by snippet name); this file lists the blocks of
 * every other part with the test that handles each, and checks the ones nothing else did: the
 * Quick start's commands, the Configuration and ops examples (configs the gateway accepts, as
 * written), and the Command line synopsis (every command and option it names exists).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Command, type Option } from "commander";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { registerAdminCommands } from "../src/cli/admin.js";
import { registerBridgeCommand } from "../src/cli/bridge.js";
import { registerClientCommands } from "../src/cli/client.js";
import { registerConfigCommand } from "../src/cli/config.js";
import { builtinServicesLayer } from "../src/cli/defaults.js";
import { registerDoctorCommand } from "../src/cli/doctor.js";
import { registerServeCommand } from "../src/cli/serve.js";
import { loadConfig, validateConfig } from "../src/config/load.js";
import type { GatewayConfig } from "../src/config/schema.js";
import { fencedBlocks, readmePart } from "./support/readme-snippets.js";

const README = readFileSync(resolve("README.md"), "utf8");

/** `## part` (and `### section`, when a part has several kinds) -> the test that handles its blocks. */
const HANDLED_BY: Record<string, string> = {
  "Quick start": "test/readme-blocks.test.ts",
  Configuration: "test/readme-blocks.test.ts",
  URLs: "test/readme-blocks.test.ts",
  "Behind a reverse proxy / At a sub-path of a shared host": "test/support/prefix-nginx.ts",
  "Command line": "test/readme-blocks.test.ts",
  "Connect a client": "test/web/snippets.test.ts",
  Deploy: "test/e2e/deploy-recipes.test.ts",
};

function parts(): string[] {
  return [...README.matchAll(/^## (.+)$/gm)].map((m) => m[1] as string);
}

/** The blocks of one part, by what the inventory calls them. */
function blocksOf(part: string) {
  return fencedBlocks(readmePart(part, README)).map((b) => ({
    ...b,
    key: HANDLED_BY[part] ? part : `${part} / ${b.section}`,
  }));
}

function onlyBlock(key: string, lang: string): string {
  const [part] = key.split(" / ");
  const found = blocksOf(part as string).filter((b) => b.key === key && b.lang === lang);
  expect(found.length, `one ${lang} block under ${key}`).toBe(1);
  return (found[0] as { body: string }).body;
}

/** A README example's placeholders ("…") made into values of the kind they stand for. */
function filled(tree: unknown): unknown {
  if (tree === "…") return "an-operator-chosen-secret-of-32-chars";
  if (Array.isArray(tree)) return tree.map(filled);
  if (tree && typeof tree === "object")
    return Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, filled(v)]));
  return tree;
}

describe("README.md's fenced blocks", () => {
  it("each is handled by a test that names its part", () => {
    const keys = new Set<string>();
    for (const part of parts()) for (const block of blocksOf(part)) keys.add(block.key);
    expect([...keys].sort()).toEqual(Object.keys(HANDLED_BY).sort());
    for (const [key, file] of Object.entries(HANDLED_BY)) {
      const source = readFileSync(resolve(file), "utf8");
      const [part, section] = key.split(" / ");
      expect({ key, named: source.includes(section ?? (part as string)) }).toEqual({ key, named: true });
    }
  });

  it("Quick start: npm start is serve with the embedded defaults the text promises, npm test the suite", () => {
    const lines = onlyBlock("Quick start", "sh")
      .split("\n")
      .map((l) => l.replace(/#.*/, "").trim())
      .filter(Boolean);
    expect(lines).toEqual(["npm install && npm start", "npm test"]);
    const { scripts } = JSON.parse(readFileSync(resolve("package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    expect(scripts.start).toBe("node bin/mcp-gateway.js serve");
    expect(scripts.test).toBeTruthy();
    const defaults = validateConfig({});
    expect(defaults).toMatchObject({
      public_url: "http://localhost:8080",
      port: 8080,
      data_dir: "./data",
      store: { type: "sqlite" },
      idp: { type: "local" },
    });
  });

  it("Configuration: the example is a config the gateway accepts, with the values it shows", async () => {
    const tree = parse(onlyBlock("Configuration", "yaml")) as Record<string, unknown>;
    // As serve reads it: over the built-in services (filesystem there changes only its policy).
    const dir = mkdtempSync(join(tmpdir(), "mcpgw-readme-config-"));
    const file = join(dir, "gateway.yaml");
    writeFileSync(file, JSON.stringify(filled({ ...tree, data_dir: dir })));
    let config: GatewayConfig;
    try {
      config = loadConfig({ file, env: {}, defaults: await builtinServicesLayer({ prepare: false }) }).config;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(config.services.filesystem?.tools?.write_file).toBeDefined();
    expect(config.public_url).toBe("https://mcp.example.com");
    expect(config.store.type).toBe("redis");
    expect(config.tokens).toMatchObject({ access_ttl: 3600, refresh_ttl: 30 * 86_400, code_ttl: 600 });
    expect(config.registration.client_ttl).toBe(90 * 86_400);
    expect(config.idp.type).toBe("github");
    // "(defaults shown)": the rate limits written there are the defaults.
    const defaults = validateConfig({}).rate_limits;
    expect(validateConfig({ rate_limits: tree.rate_limits }).rate_limits).toEqual(defaults);
  });

  it("URLs: the ops example is a config the gateway accepts", () => {
    const tree = filled(parse(onlyBlock("URLs", "yaml"))) as Record<string, unknown>;
    const config = validateConfig(tree);
    expect(config.ops).toMatchObject({ port: 9090, host: "127.0.0.1" });
    expect(config.ops.metrics_token).toBeTruthy();
  });

  it("Command line: every command and option of the synopsis exists", () => {
    const program = new Command("mcp-gateway");
    for (const register of [
      registerServeCommand,
      registerBridgeCommand,
      registerConfigCommand,
      registerDoctorCommand,
      registerAdminCommands,
      registerClientCommands,
    ])
      register(program);
    const lines = onlyBlock("Command line", "").split("\n").filter(Boolean);
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines) {
      const words = line.replace(/[[\]]/g, " ").split(/\s+/).filter(Boolean);
      expect(words[0]).toBe("mcp-gateway");
      let parent: Command = program;
      let current: Command[] = [program];
      for (let i = 1; i < words.length; i++) {
        const word = words[i] as string;
        if (word === "--") break; // what follows is the bridged command
        if (word === "|") {
          current = [parent];
          continue;
        }
        if (word.startsWith("--")) {
          for (const command of current) {
            const option = command.options.find((o: Option) => o.long === word);
            expect(option, `${line}: ${command.name()} has ${word}`).toBeDefined();
          }
          const takesValue = current.some((c) =>
            c.options.some((o: Option) => o.long === word && (o.required || o.optional)),
          );
          if (takesValue) i++;
          continue;
        }
        // Lower-case words name subcommands (a|b: each of them); the rest are arguments.
        if (!/^[a-z][a-z-]*(\|[a-z][a-z-]*)*$/.test(word)) continue;
        const names = word.split("|");
        const next = current.flatMap((c) => names.map((n) => c.commands.find((s) => s.name() === n)));
        if (next.some((c) => c === undefined)) {
          // Not a subcommand: an argument's placeholder is upper case, so this is a mistake.
          expect.fail(`${line}: ${current.map((c) => c.name()).join("|")} has no subcommand ${word}`);
        }
        parent = current[0] as Command;
        current = next as Command[];
      }
    }
  });
});
