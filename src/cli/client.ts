/**
 * The client side of the CLI, for people and for MCP clients that only speak stdio:
 * `login URL`, `token URL`, `logout URL` and `connect URL`. Credentials live in one file per
 * user (see src/client/credentials.ts). Diagnostics go to stderr; stdout carries only what a
 * script or MCP client reads (the token, the JSON-RPC stream, the login line).
 */
import { readFileSync } from "node:fs";
import { type Command, InvalidArgumentError } from "commander";
import { freshTokens } from "../client/access-token.js";
import { CredentialStore, defaultClientDir, serverKey } from "../client/credentials.js";
import { deviceLogin } from "../client/device-login.js";
import { devicePrompt } from "../client/device-prompt.js";
import { login } from "../client/login.js";
import { logout, type RegistrationOutcome } from "../client/logout.js";
import { openBrowser } from "../client/open-browser.js";
import { startRelay } from "../client/relay.js";
import { checkedAccessToken } from "../client/token-check.js";
import { parseDuration } from "../config/duration.js";

function durationArg(value: string): number {
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

/** The credentials file, from `$MCPGW_CLIENT_DIR` (the old variable still works, with a notice). */
function credentialStore(): CredentialStore {
  return new CredentialStore(
    defaultClientDir(process.env, (notice) => process.stderr.write(`mcp-gateway: warning: ${notice}\n`)),
  );
}

/** Prints `mcp-gateway CMD: message` on stderr and sets exit status 1. */
function fail(command: string, err: unknown): void {
  process.stderr.write(`mcp-gateway ${command}: ${(err as Error).message}\n`);
  process.exitCode = 1;
}

/** The secret of a client registered by hand, from a file (so it stays out of `ps` and shell history). */
function readSecret(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(
      `cannot read the client secret from ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  const secret = text.trim();
  if (!secret) throw new Error(`${path} is empty; expected the client secret`);
  return secret;
}

interface LoginFlags {
  browser: boolean;
  device?: boolean;
  timeout: number;
  scope?: string;
  clientId?: string;
  clientSecretFile?: string;
}

/** What logout says about the registration it used; nothing when there was none. */
function registrationLine(outcome: RegistrationOutcome): string | undefined {
  switch (outcome.state) {
    case "deleted":
      return "registration deleted at the server";
    case "gone":
      return "registration forgotten (the server no longer had it)";
    case "shared":
      return `registration kept: the login to ${outcome.servers.join(", ")} uses it too`;
    case "kept":
      return `registration kept: ${outcome.reason}`;
    case "failed":
    case "none":
      return undefined;
  }
}

/** Add `login`, `token`, `logout` and `connect` to the CLI. */
export function registerClientCommands(program: Command): void {
  program
    .command("login")
    .description("log in to an OAuth-protected MCP server (browser login; tokens cached for token/connect)")
    .argument("<url>", "the MCP server URL, e.g. http://localhost:8080/time/mcp", urlArg)
    .option("--no-browser", "do not open a browser; only print the URL")
    .option(
      "--device",
      "for a machine without a browser: print a URL and a code to enter on any other device, and wait (RFC 8628)",
    )
    .option("--timeout <duration>", "how long to wait for the browser (e.g. 90s, 5m)", durationArg, 300)
    .option("--scope <scopes>", "the scopes to ask for, space-separated (default: what the server names)")
    .option("--client-id <id>", "use this client, registered by hand at the authorization server")
    .option("--client-secret-file <file>", "the secret of that client, read from this file")
    .action(async (url: string, flags: LoginFlags) => {
      const interrupted = () => process.exit(130);
      process.once("SIGINT", interrupted);
      process.once("SIGTERM", interrupted);
      try {
        if (flags.clientSecretFile && !flags.clientId) {
          throw new Error("--client-secret-file needs --client-id (the client the secret belongs to)");
        }
        const client = flags.clientId
          ? {
              clientId: flags.clientId,
              ...(flags.clientSecretFile && { clientSecret: readSecret(flags.clientSecretFile) }),
            }
          : undefined;
        const result = flags.device
          ? await deviceLogin(url, {
              store: credentialStore(),
              scope: flags.scope,
              client,
              onCode: async (prompt) => {
                process.stderr.write(await devicePrompt(prompt, { qr: process.stderr.isTTY === true }));
              },
              onSlowDown: (seconds) =>
                process.stderr.write(`(the server asks to poll less often: every ${seconds} s)\n`),
              onUnavailable: (reason) =>
                process.stderr.write(
                  `(the authorization server cannot answer right now: ${reason}; still waiting for the sign-in)\n`,
                ),
            })
          : await login(url, {
              store: credentialStore(),
              timeoutMs: flags.timeout * 1000,
              scope: flags.scope,
              client,
              onAuthorizationUrl: (authorizationUrl) => {
                process.stderr.write(
                  `Open this URL in a browser to log in:\n\n  ${authorizationUrl.href}\n\n`,
                );
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
    .description(
      "print an access token for an MCP server that the server still accepts (refreshing it when needed)",
    )
    .argument("<url>", "the MCP server URL", urlArg)
    .option("--no-check", "do not ask the server whether it still accepts the cached token")
    .action(async (url: string, flags: { check: boolean }) => {
      try {
        const store = credentialStore();
        if (!flags.check) {
          process.stdout.write(`${(await freshTokens(store, url)).access_token}\n`);
          return;
        }
        const { tokens, warning } = await checkedAccessToken(store, url);
        if (warning) process.stderr.write(`mcp-gateway token: warning: ${warning}\n`);
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
        const result = await logout(credentialStore(), url);
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
        if (result.registration.state === "failed") {
          process.stderr.write(
            `mcp-gateway logout: warning: registration kept: ${result.registration.error}\n`,
          );
        }
        const line = registrationLine(result.registration);
        if (line) process.stdout.write(`${line}\n`);
      } catch (err) {
        fail("logout", err);
      }
    });

  program
    .command("connect")
    .description(
      "stdio MCP server relaying to a remote MCP server (2025 and 2026-07-28 protocols) with the cached login",
    )
    .argument("<url>", "the MCP server URL", urlArg)
    .option(
      "--no-browser",
      "for a new authorization (more scopes), print the URL on stderr but open no browser",
    )
    .option(
      "--login-timeout <duration>",
      "how long a new authorization waits for the browser",
      durationArg,
      120,
    )
    .action(async (url: string, flags: { browser: boolean; loginTimeout: number }) => {
      const log = (message: string) => process.stderr.write(`${message}\n`);
      let relay: Awaited<ReturnType<typeof startRelay>>;
      try {
        relay = await startRelay({
          store: credentialStore(),
          serverUrl: url,
          log,
          browser: flags.browser,
          loginTimeoutMs: flags.loginTimeout * 1000,
        });
      } catch (err) {
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
