/** The `mcp-gateway` program: its name, version and how a failed command ends (main.ts, admin-main.ts). */
import { readFileSync } from "node:fs";
import { Command } from "commander";

export function newProgram(): Command {
  // Two levels up from dist/cli/ (and from the admin bundle's directory, dist/admin/).
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return new Command("mcp-gateway")
    .description("OAuth 2.1 for any MCP server: authorization server, gateway and stdio bridge")
    .version(pkg.version);
}

export function runProgram(program: Command): void {
  program.parseAsync(process.argv).catch((err: unknown) => {
    process.stderr.write(`mcp-gateway: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
