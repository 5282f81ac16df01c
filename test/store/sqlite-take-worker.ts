/**
 * Child process for sqlite.test.ts: opens the file argv[2], prints "ready", waits for a line on
 * stdin (so all workers race at once, however slowly each one started), tries to take keys
 * code0..code{argv[3]-1} starting at argv[4], and prints the keys it won as JSON on a second line.
 */
import { once } from "node:events";
import { SqliteStore } from "../../src/store/sqlite.js";

const [file, count, offset] = process.argv.slice(2);
const store = new SqliteStore(file as string);
const won: string[] = [];
process.stdout.write("ready\n");
await once(process.stdin, "data");
// Each worker starts at its own offset and wraps around, so they collide all along the way
// even if the scheduler lets one of them run alone for a while.
const total = Number(count);
for (let n = 0; n < total; n++) {
  const key = `code${(n + Number(offset ?? 0)) % total}`;
  if ((await store.take("codes", key)) !== undefined) won.push(key);
}
await store.close();
process.stdout.write(`${JSON.stringify(won)}\n`);
process.exit(0);
