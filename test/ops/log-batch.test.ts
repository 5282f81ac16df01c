/**
 * LogBatch writes every line, byte for byte as Node encodes a string to UTF-8, in the order
 * given: across batches (whose buffers are filled again once written), across a batch's buffer
 * filling up, for a line longer than a buffer; and at the end of a process, however it ends,
 * with lines waiting in the batch and a write under way.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { LogBatch } from "../../src/ops/log-batch.js";

const dir = mkdtempSync(join(tmpdir(), "mcpgw-log-batch-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const fresh = () => join(dir, `log-${files++}.jsonl`);
const flushed = (batch: LogBatch) => new Promise<void>((resolve) => batch.flush(() => resolve()));

describe("LogBatch", () => {
  it("writes every line as its UTF-8 bytes, in order, across batches, full buffers and long lines", async () => {
    const file = fresh();
    const batch = new LogBatch(file, 10);
    const lines: string[] = [];
    const write = (line: string) => {
      lines.push(line);
      batch.write(line);
    };
    // Non-ASCII, a surrogate pair, lone surrogates (written as U+FFFD, as Node writes them).
    const odd = ["é", "日本", "😀", "\ud800", "x\udfffy", "\u0000", '"\\'];
    for (let round = 0; round < 4; round++) {
      // More than a buffer's worth (256 KiB) in one batch: it is handed over while being filled.
      for (let i = 0; i < 3000; i++)
        write(`{"round":${round},"i":${i},"s":"${odd[i % odd.length]}${"a".repeat(i % 200)}"}\n`);
      // A line longer than any buffer, between others.
      if (round === 1) write(`${"日".repeat(200_000)}\n`);
      // Written, so the next round fills buffers that were written before.
      await flushed(batch);
    }
    // A few lines left to the timer alone.
    write("last 1\n");
    write("last 2\n");
    await new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const poll = () => {
        if (readFileSync(file).length === Buffer.byteLength(lines.join(""))) resolve();
        else if (Date.now() - started > 10_000) reject(new Error("the timer's batch was not written"));
        else setTimeout(poll, 5);
      };
      poll();
    });
    expect(readFileSync(file).equals(Buffer.from(lines.join("")))).toBe(true);
  });

  it("calls flush's callback when asked before the destination is open", async () => {
    const empty = new LogBatch(fresh(), 10);
    await flushed(empty);
    const file = fresh();
    const batch = new LogBatch(file, 10_000);
    batch.write("waiting for the file to open\n");
    await flushed(batch);
    expect(readFileSync(file, "utf8")).toBe("waiting for the file to open\n");
  });

  it("writes a fatal line's batch at once, synchronously", async () => {
    const file = fresh();
    const batch = new LogBatch(file, 10_000);
    await flushed(batch); // open
    batch.write("before\n");
    batch.write("fatal\n");
    batch.flushSync();
    expect(readFileSync(file, "utf8")).toBe("before\nfatal\n");
  });

  for (const how of ["exit", "throw", "natural"] as const)
    it(`loses no line when the process ends by ${how}`, async () => {
      const file = fresh();
      const script = join(import.meta.dirname, "log-batch-exit.ts");
      const run = promisify(execFile)(process.execPath, ["--import", "tsx", script, file, how]);
      if (how === "throw") await expect(run).rejects.toThrow("the end");
      else await run;
      const written = readFileSync(file, "utf8").split("\n").filter(Boolean);
      expect(written).toHaveLength(5000);
      const expected = Array.from({ length: 5000 }, (_, n) => `line ${n} ${"é".repeat((n + 1) % 7)}`);
      expect(written).toEqual(expected);
    });
});
