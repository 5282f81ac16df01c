/**
 * The client side of the CLI, for people and for MCP clients that only speak stdio:
 * `login URL`, `token URL`, `logout URL` and `connect URL`. Credentials live in one file per
 * user (see src/client/credentials.ts). Diagnostics go to stderr; stdout carries only what a
 * script or MCP client reads (the token, the JSON-RPC stream, the login line).
 */
import { type Command, InvalidArgumentError } from "commander";
import { freshTokens } from "../client/access-token.js";
import { CredentialStore, serverKey } from "../client/credentials.js";
import { login } from "../client/login.js";
import { logout } from "../client/logout.js";
import { openBrowser } from "../client/open-browser.js";
import { LoginRequiredError } from "../client/provider.js";
import { startRelay } from "../client/relay.js";
import { parseDuration } from "../config/duration.js";

function timeoutArg(value: string): number {
  let seconds: number;
  try {
    seconds = parseDuration(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  if (seconds < 1) throw new InvalidArgumentError("expected at least 1 s");
  return seconds;
}

function urlArg(value: string): string {
  try {
    return serverKey(value);
  } catch (err) {
    throw new InvalidArgumentError(
      `${(err as Error).message} (expected the MCP server URL, e.g. https://host/svc/mcp)`,
    );
  }
}

/** Prints `mcp-gateway CMD: message` on stderr and sets exit status 1. */
function fail(command: string, err: unknown): void {
  process.stderr.write(`mcp-gateway ${command}: ${(err as Error).message}\n`);
  process.exitCode = 1;
}

/** Add `login`, `token`, `logout` and `connect` to the CLI. */
export function registerClientCommands(program: Command): void {
  program
    .command("login")
    .description(
      "log in to an MCP server behind the gateway (browser login; tokens cached for token/connect)",
    )
    .argument("<url>", "the MCP server URL, e.g. http://localhost:8080/time/mcp", urlArg)
    .option("--no-browser", "do not open a browser; only print the URL")
    .option("--timeout <duration>", "how long to wait for the browser (e.g. 90s, 5m)", timeoutArg, 300)
    .action(async (url: string, flags: { browser: boolean; timeout: number }) => {
      const store = new CredentialStore();
      // Ctrl-C mid-login: leave no PKCE verifier behind.
      const interrupted = () => {
        void store
          .update(url, (entry) => {
            if (!entry) return undefined;
            const { code_verifier: _dropped, ...rest } = entry;
            return Object.keys(rest).length ? rest : undefined;
          })
          .finally(() => process.exit(130));
      };
      process.once("SIGINT", interrupted);
      process.once("SIGTERM", interrupted);
      try {
        const result = await login(url, {
          store,
          timeoutMs: flags.timeout * 1000,
          onAuthorizationUrl: (authorizationUrl) => {
            process.stderr.write(`Open this URL in a browser to log in:\n\n  ${authorizationUrl.href}\n\n`);
            if (flags.browser) openBrowser(authorizationUrl.href);
          },
        });
        process.stdout.write(`logged in to ${result.serverUrl} as ${result.username ?? "(unknown user)"}\n`);
      } catch (err) {
        fail("login", err);
      } finally {
        process.off("SIGINT", interrupted);
        process.off("SIGTERM", interrupted);
      }
    });

  program
    .command("token")
    .description("print a valid access token for an MCP server (refreshing it when needed)")
    .argument("<url>", "the MCP server URL", urlArg)
    .action(async (url: string) => {
      try {
        const tokens = await freshTokens(new CredentialStore(), url);
        process.stdout.write(`${tokens.access_token}\n`);
      } catch (err) {
        fail("token", err);
      }
    });

  program
    .command("logout")
    .description("revoke the cached tokens for an MCP server and forget them")
    .argument("<url>", "the MCP server URL", urlArg)
    .action(async (url: string) => {
      try {
        const result = await logout(new CredentialStore(), url);
        if (result.revokeError) {
          process.stderr.write(
            `mcp-gateway logout: warning: could not revoke at the server: ${result.revokeError}\n`,
          );
        }
        process.stdout.write(
          result.removed
            ? `logged out of ${url}${result.revoked ? " (tokens revoked)" : ""}\n`
            : `not logged in to ${url}\n`,
        );
      } catch (err) {
        fail("logout", err);
      }
    });

  program
    .command("connect")
    .description(
      "stdio MCP server relaying to a remote MCP server with the cached login (for stdio-only clients)",
    )
    .argument("<url>", "the MCP server URL", urlArg)
    .action(async (url: string) => {
      const log = (message: string) => process.stderr.write(`${message}\n`);
      let relay: Awaited<ReturnType<typeof startRelay>>;
      try {
        relay = await startRelay({ store: new CredentialStore(), serverUrl: url, log });
      } catch (err) {
        if (!(err instanceof LoginRequiredError)) throw err;
        fail("connect", err);
        return;
      }
      const stop = () => void relay.close().then(() => process.exit(0));
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
      await relay.closed;
      process.exit(0);
    });
}
