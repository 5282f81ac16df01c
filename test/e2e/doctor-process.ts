/**
 * `mcp-gateway doctor` run as a process on a config file, its report read back: one line per
 * check, `VERDICT  check  detail` in columns of two or more spaces. A failing check makes it
 * exit non-zero, which is an answer here, not an error.
 */
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { BIN } from "./serve-process.js";

const run = promisify(execFile);

export interface DoctorReport {
  status: number;
  /** check name -> `VERDICT detail` */
  lines: Map<string, string>;
  stderr: string;
}

/** Writes `config` to `cwd`/gateway.yaml and runs doctor on it (built-ins off) with `env`. */
export async function runDoctor(cwd: string, config: string, env: NodeJS.ProcessEnv): Promise<DoctorReport> {
  const file = join(cwd, "gateway.yaml");
  writeFileSync(file, config);
  const res = await run(process.execPath, [BIN, "doctor", "--no-builtins", "-c", file], { cwd, env }).then(
    (out) => ({ ...out, status: 0 }),
    (err: { stdout: string; stderr: string; code: number }) => ({ ...err, status: err.code }),
  );
  const lines = new Map(
    res.stdout
      .trim()
      .split("\n")
      .map((line) => {
        const [verdict, check, detail] = line.split(/ {2,}/);
        return [check as string, `${verdict} ${detail}`] as const;
      }),
  );
  return { status: res.status, lines, stderr: res.stderr };
}
