/** The `mcp-gateway` command line: each command group lives in its own file. */
import type { Command } from "commander";
import { newProgram, runProgram } from "./program.js";

type Register = (program: Command) => void;

/**
 * Command groups, loaded on demand: `serve` should not pay for the MCP client SDK that
 * `connect` needs, nor `token` for fastify. Keys are the first word on the command line.
 * (`admin` usually starts from its own bundle instead, admin-main.ts: bin/mcp-gateway.js.)
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

const program = newProgram();
const word = process.argv[2] ?? "";
const group = CLIENT_COMMANDS.has(word) ? "client" : word;
// A known command loads its own group; anything else (help, a typo) loads them all.
const wanted = GROUPS[group] ? [GROUPS[group]] : Object.values(GROUPS);
for (const load of wanted) (await load())(program);
runProgram(program);
