/**
 * Child process for sqlite.test.ts: opens the file argv[2], waits until the epoch-ms start time
 * argv[3] (so all workers race at once), tries to take keys code0..code{argv[4]-1}, and prints
 * the keys it won as JSON.
 */
import { SqliteStore } from "../../src/store/sqlite.js";

const [file, startAt, count] = process.argv.slice(2);
const store = new SqliteStore(file as string);
const won: string[] = [];
await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
for (let i = 0; i < Number(count); i++) {
  const key = `code${i}`;
  if ((await store.take("codes", key)) !== undefined) won.push(key);
}
await store.close();
process.stdout.write(JSON.stringify(won));
