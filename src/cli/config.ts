/** `mcp-gateway config check|show`: validate without serving. */
import type { Command } from "commander";
import { configOrExit } from "./load-config.js";

const SECRET_KEYS = /secret|password|token/i;

function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        SECRET_KEYS.test(k) && typeof v === "string" ? "(set)" : redact(v),
      ]),
    );
  }
  return value;
}

type ConfigOptions = { config?: string; builtins: boolean };

export function registerConfigCommand(program: Command): void {
  const config = program.command("config").description("inspect the configuration");
  config
    .command("check")
    .description("validate the configuration and exit (status 2 and one line naming the key if wrong)")
    .option("-c, --config <file>", "YAML config file")
    .option("--no-builtins", "leave out the MCP services that ship in the box, as `serve --no-builtins` does")
    .action(async (opts: ConfigOptions) => {
      const { source } = await configOrExit({ file: opts.config, builtins: opts.builtins });
      process.stdout.write(`config ok${source ? ` (${source})` : " (embedded defaults)"}\n`);
    });
  config
    .command("show")
    .description("print the effective configuration, secrets hidden")
    .option("-c, --config <file>", "YAML config file")
    .option("--no-builtins", "leave out the MCP services that ship in the box, as `serve --no-builtins` does")
    .action(async (opts: ConfigOptions) => {
      const { config: effective } = await configOrExit({ file: opts.config, builtins: opts.builtins });
      process.stdout.write(`${JSON.stringify(redact(effective), null, 2)}\n`);
    });
}
