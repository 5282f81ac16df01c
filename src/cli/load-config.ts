/**
 * The configuration every command sees, loaded one way: --config, the environment, the flags,
 * and the built-in services as the lowest layer unless --no-builtins. A wrong config exits 2
 * with one line; an ignored setting is one `warning:` line on stderr.
 */
import { ConfigError, type LoadedConfig, loadConfig } from "../config/load.js";
import { builtinServicesLayer } from "./defaults.js";

export interface CliConfigOptions {
  file?: string;
  /** Flags that are config keys (--port, --host, --public-url). */
  overrides?: Record<string, unknown>;
  /** The services in the box under the configured ones (false with --no-builtins). */
  builtins: boolean;
  /** Create what the built-in services need on disk (serve and doctor run them). */
  prepare?: boolean;
}

export async function configOrExit(options: CliConfigOptions): Promise<LoadedConfig> {
  const defaults = options.builtins
    ? await builtinServicesLayer({ prepare: options.prepare ?? false })
    : undefined;
  try {
    const loaded = loadConfig({ file: options.file, overrides: options.overrides, defaults });
    for (const warning of loaded.warnings ?? []) process.stderr.write(`warning: ${warning}\n`);
    return loaded;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
