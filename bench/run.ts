/**
 * `npm run bench`: every scenario in bench/scenarios, each printed with a baseline measured in
 * the same run. Results go to stdout as a markdown table (paste into bench/RESULTS.md).
 */
import { formatRows, type LoadResult, load, startServer } from "./lib.js";
import { tokenScenarios } from "./scenarios/token.js";

const bare = await startServer("bare");
const bareLoad = (amount: number): Promise<LoadResult> =>
  load({ url: bare.info.url, method: "POST", body: "grant_type=x", amount });

try {
  const rows = [...(await tokenScenarios(bare.info, bareLoad))];
  process.stdout.write(`\n${formatRows(rows)}\n`);
  const failed = rows.filter((r) => r.subject.errors > 0 || r.subject.non2xx > 0);
  if (failed.length) {
    process.stderr.write(`errors in: ${failed.map((r) => r.scenario).join(", ")}\n`);
    process.exitCode = 1;
  }
} finally {
  await bare.stop();
}
