/**
 * A process that logs through LogBatch and then ends as told (argv[3]): `exit` calls
 * process.exit while lines wait in the batch and a write is under way, `throw` ends on an
 * uncaught exception, `natural` lets the event loop run dry. Lines go to the file argv[2]:
 * `line N` for N = 0 … LINES - 1, in bursts, some after an await so that they arrive while an
 * earlier batch is being written.
 */
import { LogBatch } from "../../src/ops/log-batch.js";

const [dest, how] = process.argv.slice(2) as [string, "exit" | "throw" | "natural"];
const LINES = 5000;
const batch = new LogBatch(dest, 10);
let n = 0;
const burst = (count: number) => {
  for (let i = 0; i < count && n < LINES; i++) batch.write(`line ${n++} ${"é".repeat(n % 7)}\n`);
};
burst(1000);
await new Promise((resolve) => batch.flush(resolve));
burst(1500);
// The timer hands this burst over; the next lines wait in the batch behind its write.
await new Promise((resolve) => setTimeout(resolve, 15));
burst(LINES);
if (how === "exit") process.exit(0);
if (how === "throw") throw new Error("the end");
