/**
 * `mcp-gateway config check|show`: validate without serving; `config client NAME URL`: the
 * configuration an MCP client needs for a service (src/web/snippets.ts, shared with the landing
 * page and the README).
 */
import type { Command } from "commander";
import { CLIENT_IDS, isClientId, plainText, snippetFor } from "../web/snippets.js";
import { configOrExit } from "./load-config.js";

const SECRET_KEYS = /secret|password|token/i;
/** Variable names in a stdio service's environment that say their value is a credential. */
const SECRET_VARIABLES = /secret|pass|token|key|auth|credential|cookie|session/i;

/** A URL's password (`redis://user:pw@host`, `postgres://…`) as ***; anything else as it is. */
function withoutPassword(value: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(value)) return value;
  try {
    const url = new URL(value);
    if (!url.password) return value;
    url.password = "***";
    return url.toString();
  } catch {
    return value;
  }
}

function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (typeof value === "string") return withoutPassword(value);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => {
        if (typeof v === "string" && SECRET_KEYS.test(k)) return [k, "(set)"];
        // An exporter's headers are its credentials whatever they are called; the names stay.
        if (k === "headers" && v && typeof v === "object" && !Array.isArray(v))
          return [k, Object.fromEntries(Object.keys(v).map((name) => [name, "(set)"]))];
        if (k === "env" && v && typeof v === "object" && !Array.isArray(v))
          return [
            k,
            Object.fromEntries(
              Object.entries(v).map(([name, val]) => [
                name,
                SECRET_VARIABLES.test(name) ? "(set)" : redact(val),
              ]),
            ),
          ];
        return [k, redact(v)];
      }),
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
  config
    .command("client")
    .description(
      `print what an MCP client needs to reach a service: the configuration on stdout, where it goes on stderr (${CLIENT_IDS.join(", ")})`,
    )
    .argument("<client>", CLIENT_IDS.join(" | "))
    .argument("<url>", "the service's MCP URL, e.g. https://mcp.example.com/time/mcp")
    .option(
      "--name <name>",
      "the name the client files the server under (default: the service name in the URL)",
    )
    .action((client: string, url: string, opts: { name?: string }) => {
      const fail = (message: string) => {
        process.stderr.write(`mcp-gateway config client: ${message}\n`);
        process.exitCode = 2;
      };
      if (!isClientId(client)) return fail(`unknown client ${client}; one of: ${CLIENT_IDS.join(", ")}`);
      if (!/^https?:\/\/[^/]/.test(url) || !URL.canParse(url))
        return fail(
          `${url} is not an http(s) URL (expected the service's MCP URL, e.g. https://host/time/mcp)`,
        );
      if (opts.name !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(opts.name))
        return fail("--name takes letters, digits, - and _ (what every client accepts)");
      const snippet = snippetFor(client, url, opts.name);
      // stdout is only the configuration, so `> file` or `$(…)` takes it as it is.
      process.stderr.write(`# ${snippet.title}: ${plainText(snippet.where)}\n# format: ${snippet.docs}\n`);
      process.stdout.write(snippet.text.endsWith("\n") ? snippet.text : `${snippet.text}\n`);
      for (const note of snippet.notes) process.stderr.write(`# ${plainText(note)}\n`);
    });
}
