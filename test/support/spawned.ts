/**
 * A long-running child process for end-to-end tests: started with an exact argv and
 * environment (nothing inherited unless given), waited for until its output says it is ready,
 * and stopped with SIGTERM (its exit code kept), SIGKILL as a last resort.
 */
import { type ChildProcess, type SpawnOptions, spawn, spawnSync } from "node:child_process";

export interface Spawned {
  child: ChildProcess;
  /** stdout and stderr so far, interleaved as they arrived. */
  output(): string;
  /** Resolves when the output matches (or rejects when the process exits first or time runs out). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then the exit code (null if it had to be killed). */
  stop(): Promise<number | null>;
}

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export function startProcess(
  command: string,
  args: string[],
  options: Pick<SpawnOptions, "cwd" | "env" | "uid" | "gid">,
): Spawned {
  const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let log = "";
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    log += chunk.toString();
    for (const listener of listeners) listener();
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      running.delete(child);
      for (const listener of listeners) listener();
      resolve(code);
    });
    child.once("error", (err) => {
      log += `\n[spawn error] ${err.message}\n`;
    });
  });
  return {
    child,
    output: () => log,
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = log.match(pattern);
          if (m) {
            done();
            resolve(m);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            done();
            reject(
              new Error(
                `${command} exited (${child.exitCode ?? child.signalCode}) before ${pattern}:\n${log}`,
              ),
            );
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${command}: no ${pattern} within ${timeoutMs} ms:\n${log}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
      child.kill("SIGTERM");
      const code = await exited;
      clearTimeout(kill);
      return code;
    },
  };
}

/** Runs a command to completion with an exact environment; never throws on a non-zero exit. */
export function runToEnd(
  command: string,
  args: string[],
  options: Pick<SpawnOptions, "cwd" | "env" | "uid" | "gid">,
  timeoutMs = 120_000,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (err) => {
      stderr += err.message;
    });
    child.once("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/**
 * Whether `uid` can read every path (and traverse to it): a test that runs a program as an
 * unprivileged user needs the checkout readable by that user, which a clone under a private
 * home directory is not.
 */
export function readableBy(uid: number, gid: number, paths: string[]): boolean {
  return paths.every((path) => spawnSync("test", ["-r", path], { uid, gid }).status === 0);
}
