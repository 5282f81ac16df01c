/**
 * A command run on a pseudo-terminal, as a person at a terminal runs it: util-linux `script`
 * gives it a pty for stdin, stdout and stderr (so `isTTY` is true), and copies what it prints to
 * our pipe. What comes back is the terminal's text: CRLF line ends, maybe colours; `plain()`
 * turns it into lines to compare.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { checkBinary } from "./binaries.js";

/** util-linux `script` (Debian package bsdutils, always installed). */
const SCRIPT_PATH = "/usr/bin/script";
export const SCRIPT = checkBinary(SCRIPT_PATH);

/** One shell word: the argument in single quotes. */
const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

function scriptArgs(argv: string[]): string[] {
  // -q: no "Script started" lines; -e: its exit code is the command's; -f: flush each write;
  // -c: the command; /dev/null: no typescript file.
  return ["-qefc", argv.map(quote).join(" "), "/dev/null"];
}

/** The terminal's text as plain lines: no colours, no carriage returns. */
export function plain(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences are what is removed.
  return text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r/g, "");
}

/** Runs argv to completion on a pty; stdout and stderr both come back in `output`. */
export function runInPty(
  argv: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv },
): { status: number | null; output: string } {
  const res = spawnSync(SCRIPT_PATH, scriptArgs(argv), {
    cwd: opts.cwd,
    env: opts.env,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 60_000,
  });
  return { status: res.status, output: plain(`${res.stdout}${res.stderr}`) };
}

/** Starts argv on a pty; `output()` is everything the terminal showed so far, made plain. */
export function spawnInPty(
  argv: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv },
): { child: ChildProcess; output(): string } {
  const child = spawn(SCRIPT_PATH, scriptArgs(argv), {
    cwd: opts.cwd,
    env: opts.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  // Decoded as streams, not chunk by chunk: a chunk can end inside a multi-byte character (a QR
  // code's ▀▄█ are three bytes each), which Buffer#toString would turn into two U+FFFD.
  child.stdout?.setEncoding("utf8");
  child.stderr?.setEncoding("utf8");
  child.stdout?.on("data", (d: string) => {
    text += d;
  });
  child.stderr?.on("data", (d: string) => {
    text += d;
  });
  return { child, output: () => plain(text) };
}
