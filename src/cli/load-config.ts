/** Config for CLI commands: --config, then the environment; a wrong config exits 2 with one line. */
import { ConfigError, type LoadOptions, loadConfig } from "../config/load.js";
import type { GatewayConfig } from "../config/schema.js";

export function configOrExit(options: LoadOptions): { config: GatewayConfig; source?: string } {
  try {
    return loadConfig(options);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
