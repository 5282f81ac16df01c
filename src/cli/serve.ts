/** `mcp-gateway serve`: run the gateway until SIGTERM/SIGINT. */
import type { Command } from "commander";
import { buildGateway } from "../app.js";
import { ConfigError } from "../config/load.js";
import { LocalIdentityProvider } from "../idp/local.js";
import { configOrExit } from "./load-config.js";

interface ServeOptions {
  config?: string;
  port?: string;
  host?: string;
  publicUrl?: string;
  builtins: boolean;
}

export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description("run the authorization server and gateway")
    .option("-c, --config <file>", "YAML config file (default ./gateway.yaml if present)")
    .option("-p, --port <port>", "port to listen on (default 8080)")
    .option("--host <host>", "address to listen on (default 127.0.0.1)")
    .option("--public-url <url>", "the URL clients use to reach the gateway (the issuer)")
    .option("--no-builtins", "do not add the MCP services that ship in the box")
    .action(async (opts: ServeOptions) => {
      await serve(opts);
    });
}

async function serve(opts: ServeOptions): Promise<void> {
  const overrides: Record<string, unknown> = {};
  if (opts.port !== undefined) overrides.port = opts.port;
  if (opts.host !== undefined) overrides.host = opts.host;
  if (opts.publicUrl !== undefined) overrides.public_url = opts.publicUrl;
  const { config, source } = await configOrExit({
    file: opts.config,
    overrides,
    builtins: opts.builtins,
    prepare: true,
  });

  let gateway: Awaited<ReturnType<typeof buildGateway>>;
  try {
    gateway = await buildGateway(config);
  } catch (err) {
    process.stderr.write(
      `${err instanceof ConfigError ? err.message : `cannot start: ${(err as Error).message}`}\n`,
    );
    process.exit(err instanceof ConfigError ? 2 : 1);
  }
  const { app, store, idp, upstreams, ops } = gateway;
  const address = await app.listen({ port: config.port, host: config.host });

  const lines = [
    `mcp-oauth-gateway listening on ${address}`,
    `issuer:   ${config.public_url}`,
    `config:   ${source ?? "(embedded defaults)"}`,
    `store:    ${store.kind} ${store.location}`,
    `login:    ${idp.displayName}`,
  ];
  if (ops?.address) lines.push(`ops:      ${ops.address} (/healthz, /readyz, /metrics)`);
  for (const name of upstreams.keys()) lines.push(`service:  ${config.public_url}/${name}/mcp`);
  if (idp instanceof LocalIdentityProvider) {
    const password = await idp.users.ensureBootstrapAdmin();
    if (password) {
      lines.push(
        "",
        `first run: created local user "admin" with password ${password}`,
        "           (shown once; change it with: mcp-gateway admin users passwd admin)",
      );
    }
  }
  // For the person starting it, on stderr: stdout carries the log, JSON lines a collector parses.
  process.stderr.write(`${lines.join("\n")}\n`);

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, "shutting down");
    // A hung upstream must not keep the process alive forever.
    setTimeout(() => process.exit(1), 10_000).unref();
    void app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}
