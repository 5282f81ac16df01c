/** The `mcp-gateway` command line: each command group lives in its own file. */
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { registerAdminCommands } from "./admin.js";
import { registerBridgeCommand } from "./bridge.js";
import { registerClientCommands } from "./client.js";
import { registerConfigCommand } from "./config.js";
import { registerServeCommand } from "./serve.js";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  version: string;
};

const program = new Command("mcp-gateway")
  .description("OAuth 2.1 for any MCP server: authorization server, gateway and stdio bridge")
  .version(pkg.version);
registerServeCommand(program);
registerConfigCommand(program);
registerAdminCommands(program);
registerBridgeCommand(program);
registerClientCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`mcp-gateway: ${(err as Error).message}\n`);
  process.exit(1);
});
