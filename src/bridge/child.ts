/**
 * One stdio MCP server as a child process: newline-delimited JSON-RPC over stdin/stdout,
 * a tail of stderr for diagnostics, and a process-group kill so nothing it started survives.
 */
import { type ChildProcess, spawn } from "node:child_process";

/** How a child is started. `env` is the whole environment beyond PATH and HOME. */
export interface ChildSpec {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
}

/** A JSON-RPC message as parsed from the wire; the bridge never validates beyond its shape. */
export type JsonRpcMessage = Record<string, unknown>;

/** How long a child gets between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 2_000;
/** Lines of stderr kept for the exit log. */
const STDERR_TAIL_LINES = 20;
/** A stdout line longer than this is not a sane JSON-RPC message; the child is ended. */
const MAX_LINE_BYTES = 64 * 1024 * 1024;

/** Process groups of live children, killed synchronously if the gateway exits without close(). */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const pgid of liveGroups) killGroup(pgid, "SIGKILL");
  });
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // Already gone.
  }
}

/** Why a child ended, for errors and logs. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderrTail: string[];
  /** Set when the child could not be started at all. */
  spawnError?: string;
}

/** A running stdio MCP server. */
export class StdioChild {
  readonly pid: number | undefined;
  /** Resolves once the child has exited (or failed to start). */
  readonly exited: Promise<ChildExit>;
  private readonly proc: ChildProcess;
  private readonly stderrTail: string[] = [];
  private stderrPartial = "";
  private stdoutChunks: Buffer[] = [];
  private stdoutBytes = 0;
  private alive = true;
  private onMessage: (msg: JsonRpcMessage) => void = () => {};
  private onBadLine: (line: string) => void = () => {};

  constructor(spec: ChildSpec) {
    installExitHook();
    // Only PATH and HOME are inherited: the gateway's own secrets never reach a child.
    const env: Record<string, string> = {};
    if (process.env.PATH) env.PATH = process.env.PATH;
    if (process.env.HOME) env.HOME = process.env.HOME;
    Object.assign(env, spec.env);
    // detached: the child leads its own process group, so kill(-pid) reaches its descendants too.
    this.proc = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env,
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.pid = this.proc.pid;
    if (this.pid) liveGroups.add(this.pid);
    this.exited = new Promise<ChildExit>((resolve) => {
      let spawnError: string | undefined;
      this.proc.once("error", (err) => {
        spawnError = err.message;
        // A failed spawn emits no "exit"; "close" still follows.
      });
      this.proc.once("close", (code, signal) => {
        this.alive = false;
        if (this.pid) liveGroups.delete(this.pid);
        if (this.stderrPartial) this.pushStderrLine(this.stderrPartial);
        // Children of the child may still hold the group; make sure none is left.
        if (this.pid) killGroup(this.pid, "SIGKILL");
        resolve({ code, signal, stderrTail: [...this.stderrTail], spawnError });
      });
    });
    this.proc.stdin?.on("error", () => {
      // EPIPE after the child died: the exit path reports it.
    });
    this.proc.stdout?.on("data", (chunk: Buffer) => this.readStdout(chunk));
    this.proc.stderr?.setEncoding("utf8");
    this.proc.stderr?.on("data", (chunk: string) => this.readStderr(chunk));
  }

  /** Receive every JSON-RPC message the child writes, and every stdout line that is not one. */
  listen(onMessage: (msg: JsonRpcMessage) => void, onBadLine: (line: string) => void): void {
    this.onMessage = onMessage;
    this.onBadLine = onBadLine;
  }

  get running(): boolean {
    return this.alive;
  }

  /** Write one message as a single line. Returns false when the child is gone. */
  send(msg: unknown): boolean {
    const stdin = this.proc.stdin;
    if (!this.alive || !stdin || stdin.destroyed) return false;
    stdin.write(`${JSON.stringify(msg)}\n`);
    return true;
  }

  /** SIGTERM the whole process group, SIGKILL after a grace period; resolves when it is gone. */
  async kill(): Promise<ChildExit> {
    if (this.alive && this.pid) {
      this.proc.stdin?.end();
      killGroup(this.pid, "SIGTERM");
      const timer = setTimeout(() => {
        if (this.pid) killGroup(this.pid, "SIGKILL");
      }, KILL_GRACE_MS);
      timer.unref();
      const exit = await this.exited;
      clearTimeout(timer);
      return exit;
    }
    return this.exited;
  }

  private readStdout(chunk: Buffer): void {
    let start = 0;
    let nl = chunk.indexOf(10);
    while (nl !== -1) {
      this.stdoutChunks.push(chunk.subarray(start, nl));
      const line = Buffer.concat(this.stdoutChunks).toString("utf8");
      this.stdoutChunks = [];
      this.stdoutBytes = 0;
      this.handleLine(line);
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    }
    if (start < chunk.length) {
      this.stdoutChunks.push(chunk.subarray(start));
      this.stdoutBytes += chunk.length - start;
      if (this.stdoutBytes > MAX_LINE_BYTES) {
        this.stdoutChunks = [];
        this.stdoutBytes = 0;
        this.onBadLine("(stdout line over the size limit)");
        void this.kill();
      }
    }
  }

  private handleLine(raw: string): void {
    const line = raw.trim();
    if (!line) return;
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      this.onBadLine(line);
      return;
    }
    if (Array.isArray(msg)) {
      // A batch from an older server: deliver its messages one by one.
      for (const m of msg) {
        if (m && typeof m === "object") this.onMessage(m as JsonRpcMessage);
      }
    } else if (msg && typeof msg === "object") {
      this.onMessage(msg as JsonRpcMessage);
    } else {
      this.onBadLine(line);
    }
  }

  private readStderr(chunk: string): void {
    const parts = (this.stderrPartial + chunk).split("\n");
    this.stderrPartial = parts.pop() ?? "";
    for (const line of parts) this.pushStderrLine(line);
  }

  private pushStderrLine(line: string): void {
    this.stderrTail.push(line.length > 500 ? `${line.slice(0, 500)}…` : line);
    if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
  }
}
