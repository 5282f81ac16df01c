/**
 * The `tmux` MCP server: terminal sessions a model can start, type into and read, on a dedicated
 * tmux server (its own socket) so the user's own sessions stay out of reach. Sessions outlive the
 * MCP session that made them, as tmux sessions do; `kill_session` ends them. Built on SDK v2: one
 * definition serves 2025 sessions and 2026-07-28 stateless requests (the state is tmux's anyway).
 */
import { type CallToolResult, McpServer } from "@modelcontextprotocol/server";
import { z } from "zod";
import {
  SESSION_NAME,
  TmuxCommandError,
  TmuxMissingError,
  TmuxRunner,
  type TmuxRunnerOptions,
} from "./tmux-runner.js";

const sessionName = z
  .string()
  .regex(SESSION_NAME, "session names are 1-64 letters, digits, '_' or '-', starting with a letter or digit")
  .describe("tmux session name (letters, digits, '_' or '-')");

/** Most lines `capture_pane` returns, so one call cannot flood a model's context. */
const MAX_CAPTURE_LINES = 5000;
/** Pane size of new sessions: wide enough that ordinary output is not wrapped. */
const PANE_COLUMNS = "200";
const PANE_ROWS = "50";
/** Tries of new-session when the server it reached was exiting (one is nearly always enough). */
const SERVER_EXIT_RETRIES = 3;

const sessionSchema = z.object({
  name: z.string(),
  windows: z.number(),
  created: z.string(),
  attached: z.boolean(),
});

function text(message: string): CallToolResult {
  return { content: [{ type: "text", text: message }] };
}

/** A tool error a model can act on: tmux missing, no such session, a name taken, or tmux's own word. */
function failure(err: unknown, session?: string): CallToolResult {
  let message: string;
  if (err instanceof TmuxMissingError) message = err.message;
  else if (err instanceof TmuxCommandError && session && (err.noSession || err.noServer))
    message = `no tmux session named "${session}" (list_sessions shows the ones there are)`;
  else if (err instanceof TmuxCommandError && err.duplicate && session)
    message = `a tmux session named "${session}" already exists`;
  else message = `tmux failed: ${err instanceof Error ? err.message : String(err)}`;
  return { content: [{ type: "text", text: message }], isError: true };
}

/** Target for commands on a session's current pane: `=` asks tmux for an exact name match. */
function paneTarget(session: string): string {
  return `=${session}:`;
}

/** The last `count` lines of a capture, without the blank rows below the cursor. */
function lastLines(captured: string, count: number): string {
  const lines = captured.replace(/\s+$/, "").split("\n");
  return lines.slice(-count).join("\n");
}

/**
 * Build one server instance on the tmux binary and socket in `opts` (defaults: `tmux` on PATH,
 * `-L mcp-gateway`). The stdio entry makes one per connection; they all reach the same tmux server.
 */
export function createTmuxServer(opts: TmuxRunnerOptions = {}): McpServer {
  const tmux = new TmuxRunner(opts);
  const server = new McpServer({ name: "mcp-tmux", version: "1.0.0" });

  server.registerTool(
    "list_sessions",
    {
      title: "List sessions",
      description: "List the tmux sessions on this server's dedicated tmux socket.",
      inputSchema: z.object({}),
      outputSchema: z.object({ sessions: z.array(sessionSchema) }),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async () => {
      let out = "";
      try {
        // "|" rather than a tab: tmux escapes control characters in formats when it has no UTF-8 locale.
        out = await tmux.run([
          "list-sessions",
          "-F",
          "#{session_windows}|#{session_created}|#{session_attached}|#{session_name}",
        ]);
      } catch (err) {
        // No tmux server yet means no sessions, not an error.
        if (!(err instanceof TmuxCommandError && err.noServer)) return failure(err);
      }
      const sessions = out
        .split("\n")
        .filter((line) => line.length > 0)
        .map((line) => {
          // The name goes last and keeps any "|" of its own.
          const [windows = "0", created = "0", attached = "0", ...name] = line.split("|");
          return {
            name: name.join("|"),
            windows: Number(windows),
            created: new Date(Number(created) * 1000).toISOString(),
            attached: Number(attached) > 0,
          };
        });
      const summary = sessions.length
        ? sessions.map((s) => `${s.name} (${s.windows} window${s.windows === 1 ? "" : "s"})`).join("\n")
        : "no sessions";
      return { content: [{ type: "text", text: summary }], structuredContent: { sessions } };
    },
  );

  server.registerTool(
    "create_session",
    {
      title: "Create session",
      description:
        "Start a detached tmux session. Without a command it runs the default shell; with one, tmux runs that command line in it (the session ends when the command exits).",
      inputSchema: z.object({
        name: sessionName,
        command: z.string().min(1).max(4096).optional().describe("command line to run instead of a shell"),
      }),
      annotations: { destructiveHint: false, openWorldHint: false },
    },
    async ({ name, command }) => {
      const args = ["new-session", "-d", "-s", name, "-x", PANE_COLUMNS, "-y", PANE_ROWS];
      // One argument after the options: tmux hands it to the session's shell, which is what a
      // caller asking for a command line wants; our own process never goes through a shell.
      if (command) args.push(command);
      // A server emptied a moment ago may still accept the connection and then exit under it
      // ("server exited unexpectedly"): nothing was created, and the next try starts a new one.
      for (let attempt = 1; ; attempt++) {
        try {
          await tmux.run(args);
          return text(`created tmux session "${name}"`);
        } catch (err) {
          if (err instanceof TmuxCommandError && err.serverExited && attempt < SERVER_EXIT_RETRIES) continue;
          return failure(err, name);
        }
      }
    },
  );

  server.registerTool(
    "send_keys",
    {
      title: "Send keys",
      description:
        "Type text into a session's active pane, literally (no key-name interpretation), then press Enter unless enter is false.",
      inputSchema: z.object({
        session: sessionName,
        keys: z.string().max(65_536).describe("text to type, sent literally"),
        enter: z.boolean().default(true).describe("press Enter after the text (default true)"),
      }),
      annotations: { destructiveHint: true, openWorldHint: false },
    },
    async ({ session, keys, enter }) => {
      try {
        if (keys.length > 0) await tmux.run(["send-keys", "-t", paneTarget(session), "-l", "--", keys]);
        else await tmux.run(["has-session", "-t", `=${session}`]);
        if (enter) await tmux.run(["send-keys", "-t", paneTarget(session), "Enter"]);
        return text(`sent ${keys.length} character(s)${enter ? " and Enter" : ""} to "${session}"`);
      } catch (err) {
        return failure(err, session);
      }
    },
  );

  server.registerTool(
    "capture_pane",
    {
      title: "Capture pane",
      description: "Read the last lines of a session's active pane (its screen and scrollback).",
      inputSchema: z.object({
        session: sessionName,
        lines: z
          .number()
          .int()
          .min(1)
          .max(MAX_CAPTURE_LINES)
          .default(100)
          .describe(`how many lines, from the bottom (default 100, at most ${MAX_CAPTURE_LINES})`),
      }),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ session, lines }) => {
      try {
        // -J joins wrapped lines; -S -N starts N lines up into the scrollback.
        const out = await tmux.run([
          "capture-pane",
          "-p",
          "-J",
          "-t",
          paneTarget(session),
          "-S",
          `-${lines}`,
        ]);
        return text(lastLines(out, lines));
      } catch (err) {
        return failure(err, session);
      }
    },
  );

  server.registerTool(
    "kill_session",
    {
      title: "Kill session",
      description: "End a tmux session and every process in it.",
      inputSchema: z.object({ session: sessionName }),
      annotations: { destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    async ({ session }) => {
      try {
        await tmux.run(["kill-session", "-t", `=${session}`]);
        return text(`killed tmux session "${session}"`);
      } catch (err) {
        return failure(err, session);
      }
    },
  );

  return server;
}
