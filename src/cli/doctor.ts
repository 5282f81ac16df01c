/** `mcp-gateway doctor`: check the configuration against the real store, login and upstreams. */
import type { Command } from "commander";
import { diagnose } from "../ops/doctor.js";
import { configOrExit } from "./load-config.js";

export function registerDoctorCommand(program: Command): void {
  program
    .command("doctor")
    .description(
      "check what `serve` would use (store, login, every service) and say what is wrong; exit 1 on a failure",
    )
    .option("-c, --config <file>", "YAML config file (default ./gateway.yaml if present)")
    .option("--no-builtins", "leave out the MCP services that ship in the box, as `serve --no-builtins` does")
    .action(async (opts: { config?: string; builtins: boolean }) => {
      // The same layers as `serve`: the built-in services sit under the configured ones.
      const { config, source } = await configOrExit({
        file: opts.config,
        builtins: opts.builtins,
        prepare: true,
      });
      const findings = [
        { verdict: "ok", check: "config", detail: source ?? "(embedded defaults)" },
        ...(await diagnose(config)),
      ];
      const width = Math.max(...findings.map((f) => f.check.length));
      for (const f of findings)
        process.stdout.write(`${f.verdict.padEnd(4)}  ${f.check.padEnd(width)}  ${f.detail}\n`);
      process.exitCode = findings.some((f) => f.verdict === "fail") ? 1 : 0;
    });
}
