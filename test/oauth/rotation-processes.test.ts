/**
 * Refresh-token rotation over two gateway processes (`mcp-gateway serve`) on one SQLite file:
 * the rotation is one transaction that takes the file's write lock (BEGIN IMMEDIATE), so the
 * processes see one chain per grant, as two instances on one Redis do (scale-out.test.ts).
 */
import { afterAll, beforeAll, describe, it } from "vitest";
import { BUILT } from "../e2e/serve-process.js";
import { type ServePair, startServePairOnSqlite } from "../support/serve-pair.js";
import { SERVICES } from "./helpers.js";
import {
  type Pair,
  replayOnTheOtherGateway,
  SEALING,
  stormServesOneSuccessor,
  twoRotationsOldEndsTheGrant,
} from "./rotation-scenarios.js";

describe.skipIf(!BUILT && process.env.CI !== "true")(
  "two gateway processes on one SQLite file (run `npm run build` first)",
  () => {
    let processes: ServePair;
    let pair: Pair;

    beforeAll(async () => {
      processes = await startServePairOnSqlite({ ...SERVICES, ...SEALING });
      pair = [{ url: processes.first.base }, { url: processes.second.base }];
    });
    afterAll(async () => {
      await processes?.stop();
    });

    it("answers 20 parallel refreshes of one token over both with one successor; one token works after", async () => {
      await stormServesOneSuccessor(pair);
    });

    it("refuses a token two rotations old and ends the grant in both processes", async () => {
      await twoRotationsOldEndsTheGrant(pair);
    });

    it("answers a replay on the other process with the same successor, not a second chain", async () => {
      await replayOnTheOtherGateway(pair);
    });
  },
);
