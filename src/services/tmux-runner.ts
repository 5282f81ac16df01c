/**
 * Runs the system `tmux` binary for the tmux MCP server: always with `execFile` and an argument
 * array (never a shell string), always on one dedicated server socket, so the user's own tmux
 * sessions are never seen or touched.
 */
import { execFile } from "node:child_process";

/** Where the dedicated tmux server listens: a socket name (`-L`) or a socket path (`-S`). */
export type TmuxSocket = { name: string } | { path: string };

/** Default socket name: tmux puts it in its own per-user directory, apart from the user's `default`. */
export const DEFAULT_SOCKET_NAME = "mcp-gateway";

/** Session names: a strict subset of what tmux allows, with none of its target syntax (`:`, `.`, `=`). */
export const SESSION_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** tmux is not installed (or not where we were told to look). */
export class TmuxMissingError extends Error {
  constructor(binary: string) {
    super(
      `tmux is not installed: "${binary}" was not found (install tmux, or set MCP_TMUX_BINARY to its path)`,
    );
    this.name = "TmuxMissingError";
  }
}

/** A tmux command failed; `message` is tmux's own explanation, `noServer` when nothing runs yet. */
export class TmuxCommandError extends Error {
  readonly noServer: boolean;
  readonly noSession: boolean;
  readonly duplicate: boolean;
  /** The server went away while this command was connected: it did nothing, and may be retried. */
  readonly serverExited: boolean;
  constructor(stderr: string) {
    const text = stderr.trim() || "tmux failed with no message";
    super(text);
    this.name = "TmuxCommandError";
    // tmux says "no server running on …" or "error connecting to … (No such file…)" before the
    // first session exists, and "server exited unexpectedly" when the last session was just
    // killed and the server is going away: all of them an empty server, not a failure.
    this.serverExited = /server exited unexpectedly/.test(text);
    this.noServer = this.serverExited || /no server running|error connecting to/.test(text);
    // Between its last session's end and its exit the server is still up with no sessions, and
    // any target then fails as "no current target": that too is "no such session".
    this.noSession = /can't find (session|window|pane)|no current target/.test(text);
    this.duplicate = /duplicate session/.test(text);
  }
}

/** Options of a runner: the binary (default `tmux` on PATH), the socket, a timeout per command. */
export interface TmuxRunnerOptions {
  binary?: string;
  socket?: TmuxSocket;
  timeoutMs?: number;
}

/** One tmux server reached through one socket. */
export class TmuxRunner {
  readonly binary: string;
  readonly socket: TmuxSocket;
  private readonly timeoutMs: number;

  constructor(opts: TmuxRunnerOptions = {}) {
    this.binary = opts.binary ?? "tmux";
    this.socket = opts.socket ?? { name: DEFAULT_SOCKET_NAME };
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** Human-readable socket, for messages. */
  describeSocket(): string {
    return "path" in this.socket ? this.socket.path : `-L ${this.socket.name}`;
  }

  /** Run `tmux <socket> -f /dev/null <args…>` and return its stdout. */
  run(args: string[]): Promise<string> {
    const socketArgs = "path" in this.socket ? ["-S", this.socket.path] : ["-L", this.socket.name];
    // -f /dev/null: a server started here ignores ~/.tmux.conf, so behaviour does not depend on it.
    const argv = [...socketArgs, "-f", "/dev/null", ...args];
    return new Promise((resolve, reject) => {
      execFile(
        this.binary,
        argv,
        { timeout: this.timeoutMs, maxBuffer: 8 * 1024 * 1024, encoding: "utf8" },
        (err, stdout, stderr) => {
          if (!err) return resolve(stdout);
          if (
            (err as NodeJS.ErrnoException).code === "ENOENT" ||
            (err as NodeJS.ErrnoException).code === "EACCES"
          )
            return reject(new TmuxMissingError(this.binary));
          if (err.killed)
            return reject(new TmuxCommandError(`tmux did not answer within ${this.timeoutMs} ms`));
          reject(new TmuxCommandError(stderr || err.message));
        },
      );
    });
  }
}
