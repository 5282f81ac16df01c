/**
 * The SQLite change feed (src/store/sqlite-events.ts) between two gateway processes
 * (`mcp-gateway serve`) on one SQLite file, with verdicts cached for a minute so that only the
 * feed can make the second process refuse a revoked token within REACH_MS:
 *
 * - a revocation on A is enforced by B's /verify;
 * - B stopped (SIGSTOP, a listener that cannot read) while A revokes two tokens: once B runs
 *   again it reads on from the last change it saw and enforces both;
 * - the file locked by a third process past the busy timeout (what an outage is for SQLite,
 *   src/store/sqlite.ts): A's /revoke answers 503 and changes nothing, B keeps answering
 *   (never a 500), and the same revocation once the lock is gone reaches B.
 */
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { obtainTokens, SERVICES } from "../oauth/helpers.js";
import { SEALING } from "../oauth/rotation-scenarios.js";
import { registerClient } from "../support/oauth-client.js";
import { msUntilRefused, REACH_MS, verify as verifyAt } from "../support/revocation-reach.js";
import { type ServePair, startServePairOnSqlite } from "../support/serve-pair.js";
import { BUILT, type ServeProcess } from "./serve-process.js";

/** /verify at a serve process. */
const verify = (base: string, token: string) => verifyAt({ url: base }, token);

describe.skipIf(!BUILT && process.env.CI !== "true")(
  "the SQLite change feed between two gateway processes (run `npm run build` first)",
  () => {
    let pair: ServePair;
    let a: ServeProcess;
    let b: ServeProcess;
    let issuer: string;
    let dataDir: string;

    beforeAll(async () => {
      pair = await startServePairOnSqlite(
        { ...SERVICES, ...SEALING, tokens: { revocation_cache: 60 } },
        { prefix: "mcpgw-feed-", timeoutMs: 60_000 },
      );
      ({ first: a, second: b, issuer, dataDir } = pair);
    }, 120_000);
    afterAll(async () => {
      // A failed test may have left B stopped.
      b?.child.kill("SIGCONT");
      await pair?.stop();
    });

    /** A token B has checked (its verdict now cached for a minute), and the client it was issued to. */
    async function cachedOnB() {
      const client = await registerClient(a.base);
      const tokens = await obtainTokens({ url: a.base }, client, { resource: `${issuer}/notes/mcp` });
      expect(await verify(b.base, tokens.access_token)).toBe(200);
      // RFC 7009 /revoke by the token's own (public) client; the headers matter when it is a 503.
      const revoke = async () => {
        const res = await fetch(`${a.base}/revoke`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({
            token: tokens.access_token,
            token_type_hint: "access_token",
            client_id: client.client_id,
          }),
        });
        await res.arrayBuffer();
        return res;
      };
      return { token: tokens.access_token, revoke };
    }

    it("a revocation on A is enforced by B", async () => {
      const { token, revoke } = await cachedOnB();
      const revokedAt = Date.now();
      expect((await revoke()).status).toBe(200);
      expect(await msUntilRefused({ url: b.base }, token, revokedAt)).toBeLessThan(REACH_MS);
    }, 60_000);

    it("B stopped while A revokes two tokens: once B runs again it reads on and enforces both", async () => {
      const first = await cachedOnB();
      const second = await cachedOnB();
      b.child.kill("SIGSTOP");
      try {
        // Two change rows B has not read: it must read on from the last one it saw.
        expect((await first.revoke()).status).toBe(200);
        expect((await second.revoke()).status).toBe(200);
      } finally {
        b.child.kill("SIGCONT");
      }
      const resumed = Date.now();
      expect(await msUntilRefused({ url: b.base }, first.token, resumed)).toBeLessThan(REACH_MS);
      expect(await msUntilRefused({ url: b.base }, second.token, resumed)).toBeLessThan(REACH_MS);
    }, 60_000);

    it("the file locked past the busy timeout: /revoke answers 503, B keeps answering, the retried revocation reaches B", async () => {
      const { token, revoke } = await cachedOnB();
      const lock = new Database(join(dataDir, "gateway.db"));
      lock.exec("BEGIN IMMEDIATE");
      let refused: Awaited<ReturnType<typeof revoke>>;
      let duringLock: number;
      try {
        refused = await revoke();
        duringLock = await verify(b.base, token);
      } finally {
        lock.exec("ROLLBACK");
        lock.close();
      }
      expect(refused.status).toBe(503);
      expect(refused.headers.get("retry-after")).toBeTruthy();
      // Nothing was revoked, and B answered from what it had (its reads do not wait for writers).
      expect(duringLock).toBe(200);
      expect(await verify(b.base, token)).toBe(200);
      const revokedAt = Date.now();
      expect((await revoke()).status).toBe(200);
      expect(await msUntilRefused({ url: b.base }, token, revokedAt)).toBeLessThan(REACH_MS);
    }, 60_000);
  },
);
