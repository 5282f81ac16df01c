/**
 * `mcp-gateway bridge [options] -- COMMAND ARGS…`: serve a stdio MCP server over Streamable
 * HTTP until SIGTERM/SIGINT, then end every child before exiting.
 */
import { type Command, InvalidArgumentError, Option } from "commander";
import { isLoopback, startBridge } from "../bridge/index.js";
import { readSecretFile } from "../bridge/secret-file.js";
import { parseDuration } from "../config/duration.js";

function intArg(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

function durationArg(value: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function envArg(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError("expected NAME=VALUE");
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

interface BridgeFlags {
  port: number;
  host: string;
  path: string;
  mode: "per-session" | "shared";
  maxSessions: number;
  idleTimeout: number;
  requestTimeout: number;
  env: Record<string, string>;
  passEnv: string[];
  /** The secret read from --auth-token-file (the parser reads the file), not its path. */
  authTokenFile?: string;
  userHeader: string;
  clientHeader: string;
}

function secretFileArg(path: string): string {
  try {
    return readSecretFile(path);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** Add the `bridge` command to the CLI. */
export function registerBridgeCommand(program: Command): void {
  program
    .command("bridge")
    .description(
      "serve a stdio MCP server over Streamable HTTP (put the gateway in front; --auth-token-file makes it the only way in)",
    )
    .argument("<command>", "the stdio MCP server to run (put it after --)")
    .argument("[args...]", "its arguments")
    .option("--port <n>", "port to listen on (0 picks a free one)", intArg(0, 65535), 8000)
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--path <path>", "endpoint path", "/mcp")
    .addOption(
      new Option("--mode <mode>", "one child per session, or one shared by all")
        .choices(["per-session", "shared"])
        .default("per-session"),
    )
    .option("--max-sessions <n>", "most concurrent sessions", intArg(1, 1_000_000), 100)
    .option("--idle-timeout <duration>", "end sessions idle this long (e.g. 600, 10m)", durationArg, 600)
    .option("--request-timeout <duration>", "fail requests unanswered this long", durationArg, 120)
    .option("-e, --env <NAME=VALUE>", "environment for the child (repeatable)", envArg, {})
    .option("--pass-env <NAME...>", "copy these variables from this environment to the child", [])
    .option(
      "--auth-token-file <file>",
      "require every request to carry the secret in this file as Authorization: Bearer (the gateway's upstream_bearer_file)",
      secretFileArg,
    )
    .option(
      "--user-header <name>",
      "header naming the user a session belongs to (gateway identity_headers.user_id)",
      "X-User-Id",
    )
    .option(
      "--client-header <name>",
      "header naming the client a session belongs to (gateway identity_headers.client_id)",
      "X-Auth-Client-Id",
    )
    .action(async (command: string, args: string[], flags: BridgeFlags) => {
      const authToken = flags.authTokenFile;
      if (!authToken && !isLoopback(flags.host)) {
        process.stderr.write(
          `bridge: warning: listening on ${flags.host} without --auth-token-file: anyone who can reach this address runs ${command} unauthenticated\n`,
        );
      }
      const env = { ...flags.env };
      for (const name of flags.passEnv) {
        const value = process.env[name];
        if (value !== undefined) env[name] = value;
      }
      const bridge = await startBridge({
        command,
        args,
        env,
        sessionMode: flags.mode,
        maxSessions: flags.maxSessions,
        idleTimeoutSeconds: flags.idleTimeout,
        requestTimeoutSeconds: flags.requestTimeout,
        host: flags.host,
        port: flags.port,
        path: flags.path,
        authToken,
        identityHeaders: { userId: flags.userHeader, clientId: flags.clientHeader },
        logger: stderrLogger(),
      });
      const shutdown = (signal: string) => {
        process.stderr.write(`bridge: ${signal}, ending ${bridge.sessions()} session(s)\n`);
        void bridge.close().then(() => process.exit(0));
      };
      process.once("SIGTERM", () => shutdown("SIGTERM"));
      process.once("SIGINT", () => shutdown("SIGINT"));
      // Only now: whoever reads the URL may signal us at once, and must find the handlers.
      process.stdout.write(`${bridge.url}\n`);
    });
}

/** One JSON line per event on stderr, pino-style, so stdout carries only the URL. */
function stderrLogger() {
  const write = (level: string) => (obj: object, msg?: string) =>
    process.stderr.write(`${JSON.stringify({ level, time: Date.now(), ...obj, msg })}\n`);
  return { info: write("info"), warn: write("warn"), error: write("error") };
}
