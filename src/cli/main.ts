/** The `mcp-gateway` command line: each command group lives in its own file. */
import { readFileSync } from "node:fs";
import { Command } from "commander";

type Register = (program: Command) => void;

/**
 * Command groups, loaded on demand: `serve` should not pay for the MCP client SDK that
 * `connect` needs, nor `token` for fastify. Keys are the first word on the command line.
 */
const GROUPS: Record<string, () => Promise<Register>> = {
  serve: async () => (await import("./serve.js")).registerServeCommand,
  config: async () => (await import("./config.js")).registerConfigCommand,
  admin: async () => (await import("./admin.js")).registerAdminCommands,
  bridge: async () => (await import("./bridge.js")).registerBridgeCommand,
  client: async () => (await import("./client.js")).registerClientCommands,
  doctor: async () => (await import("./doctor.js")).registerDoctorCommand,
};
const CLIENT_COMMANDS = new Set(["login", "token", "connect", "logout"]);

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  version: string;
};

const program = new Command("mcp-gateway")
  .description("OAuth 2.1 for any MCP server: authorization server, gateway and stdio bridge")
  .version(pkg.version);

const word = process.argv[2] ?? "";
const group = CLIENT_COMMANDS.has(word) ? "client" : word;
// A known command loads its own group; anything else (help, a typo) loads them all.
const wanted = GROUPS[group] ? [GROUPS[group]] : Object.values(GROUPS);
for (const load of wanted) (await load())(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`mcp-gateway: ${(err as Error).message}\n`);
  process.exit(1);
});
