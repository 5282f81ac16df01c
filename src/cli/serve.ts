/** `mcp-gateway serve`: run the gateway until SIGTERM/SIGINT. */
import type { Command } from "commander";
import { buildGateway } from "../app.js";
import { ConfigError } from "../config/load.js";
import { Drain } from "../http/drain.js";
import { LocalIdentityProvider } from "../idp/local.js";
import { untilStoreAnswers } from "../store/startup.js";
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
  const { app, store, idp, upstreams, ops, cluster } = gateway;
  // Connections are tracked from the first one, so SIGTERM can drain them.
  const drain = new Drain();
  drain.add(app.server);
  if (cluster) drain.add(cluster.server);
  const address = await app.listen({ port: config.port, host: config.host });

  const lines = [
    `mcp-oauth-gateway listening on ${address}`,
    `issuer:   ${config.public_url}`,
    `config:   ${source ?? "(embedded defaults)"}`,
    `store:    ${store.kind} ${store.location}`,
    `login:    ${idp.displayName}`,
  ];
  if (ops?.address) lines.push(`ops:      ${ops.address} (/healthz, /readyz, /metrics)`);
  if (cluster) lines.push(`cluster:  ${cluster.advertiseUrl} (internal listener on ${cluster.listening})`);
  for (const name of upstreams.keys()) lines.push(`service:  ${config.public_url}/${name}/mcp`);
  if (idp instanceof LocalIdentityProvider) {
    let password: string | undefined;
    try {
      password = await untilStoreAnswers(gateway.startup, "first-run admin", () =>
        idp.users.ensureBootstrapAdmin(),
      );
    } catch (err) {
      process.stderr.write(`cannot start: ${(err as Error).message}\n`);
      process.exit(1);
    }
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
    const timeoutMs = config.shutdown_timeout * 1000;
    app.log.info({ signal, shutdown_timeout: config.shutdown_timeout }, "shutting down: draining");
    // Whatever hangs (a child that ignores SIGTERM, a store that does not answer), the process
    // is gone shortly after shutdown_timeout.
    setTimeout(() => process.exit(1), timeoutMs + 2_000).unref();
    void (async () => {
      // Stop accepting, end SSE streams, let in-flight requests finish (up to the timeout)...
      const finished = await drain.drain(timeoutMs);
      if (!finished)
        app.log.warn({ inFlight: drain.inFlight() }, "shutdown_timeout reached; cutting what is left");
      // ...then close the rest: bridges and their children, session owner entries, the store.
      await app.close();
    })().then(
      () => process.exit(0),
      (err: Error) => {
        app.log.error({ err: err.message }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}
