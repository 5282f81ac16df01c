/**
 * The owner's access line for a request another instance relayed to it: the same line as any
 * other request's (src/ops/access-line.ts through the app's RequestLog), plus `relayed_from`,
 * and under the same switch: with `log_requests: false` neither instance writes one.
 *
 * Two instances on one real redis-server; a session opened straight at B, then a tool call on it
 * sent to A, which relays it to B.
 */
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUILT } from "../e2e/serve-process.js";
import { accessTokenFor } from "../support/login.js";
import { redisAvailable } from "../support/redis.js";
import { LOGIN, startCluster, type TestCluster } from "./cluster.js";
import { callTool, openSession } from "./sessions.js";

const CAN_RUN = BUILT && redisAvailable();

type LogLine = Record<string, unknown> & { msg?: string; req?: Record<string, unknown> };

function linesOf(stdout: string, from: number): LogLine[] {
  return stdout
    .slice(from)
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as LogLine);
}

/** Waits until `pick` finds a line instance output `read` wrote after `from` (lines come in batches). */
async function lineWhenWritten(read: () => string, from: number, pick: (l: LogLine) => boolean) {
  for (let i = 0; i < 400; i++) {
    const found = linesOf(read(), from).find(pick);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("no such line was written");
}

/** Two instances, a session B holds, and a tool call on it sent to A (relayed to B). */
async function relayedCall(extraConfig: string[]) {
  const cluster = await startCluster({ instances: 2, proxy: "nginx", extraConfig });
  const [a, b] = cluster.instances as [TestCluster["instances"][number], TestCluster["instances"][number]];
  const { accessToken: token } = await accessTokenFor(cluster.base, [`${cluster.base}/counter/mcp`], LOGIN);
  const session = await openSession(`http://127.0.0.1:${b.port}/counter/mcp`, token, cluster.redis.url);
  expect(session.owner).toBe(b.advertiseUrl);
  const fromA = a.process.stdout().length;
  const fromB = b.process.stdout().length;
  const call = await callTool(`http://127.0.0.1:${a.port}/counter/mcp`, token, session.sid, "where", {});
  expect(call.status).toBe(200);
  // Served by B's child: the request was relayed.
  expect(call.json?.instance).toBe("b");
  return { cluster, a, b, fromA, fromB };
}

const isRelayed = (l: LogLine) => "relayed_from" in l || String(l.msg).startsWith("relayed");

describe.skipIf(!CAN_RUN && process.env.CI !== "true")(
  "the owner's access line for a relayed request (run `npm run build` first)",
  () => {
    let cluster: TestCluster | undefined;
    afterAll(async () => {
      await cluster?.stop();
    });

    describe("with the access log on (the default)", () => {
      let run: Awaited<ReturnType<typeof relayedCall>>;
      beforeAll(async () => {
        run = await relayedCall([]);
        cluster = run.cluster;
      }, 180_000);
      afterAll(async () => {
        await cluster?.stop();
        cluster = undefined;
      });

      it("is the normal line plus relayed_from, once", async () => {
        const { a, b, fromA, fromB } = run;
        const onA = await lineWhenWritten(
          () => a.process.stdout(),
          fromA,
          (l) => l.msg === "request completed" && l.req?.path === "/counter/mcp",
        );
        const onB = await lineWhenWritten(() => b.process.stdout(), fromB, isRelayed);
        expect(onB.msg).toBe("request completed");
        expect(onB.relayed_from).toBe(a.advertiseUrl);
        expect(onB.req).toEqual({ method: "POST", path: "/counter/mcp", ip: "127.0.0.1" });
        expect(onB.res).toEqual({ statusCode: 200 });
        expect(typeof onB.responseTime).toBe("number");
        // The same line as A's route line (request id included, from B's own sequence), plus relayed_from.
        expect(typeof onB.reqId).toBe("string");
        expect(new Set(Object.keys(onB))).toEqual(new Set([...Object.keys(onA), "relayed_from"]));
        // One line for the one request (a later one would have been written with it).
        expect(linesOf(b.process.stdout(), fromB).filter(isRelayed)).toHaveLength(1);
      });
    });

    describe("with log_requests: false", () => {
      let run: Awaited<ReturnType<typeof relayedCall>>;
      beforeAll(async () => {
        run = await relayedCall(["log_requests: false"]);
        cluster = run.cluster;
      }, 180_000);

      it("no instance writes a line for it", async () => {
        const { b, fromB } = run;
        // A marker B logs whatever log_requests says, written after the relayed request's answer
        // was complete: an unsigned request at its internal listener is refused with a warning.
        const refused = await request(`${b.advertiseUrl}/counter/mcp`, { method: "POST", body: "{}" });
        await refused.body.text();
        expect(refused.statusCode).toBe(401);
        await lineWhenWritten(
          () => b.process.stdout(),
          fromB,
          (l) => String(l.msg).startsWith("internal channel: request refused"),
        );
        expect(linesOf(b.process.stdout(), fromB).filter(isRelayed)).toEqual([]);
        expect(linesOf(b.process.stdout(), fromB).filter((l) => l.msg === "request completed")).toEqual([]);
      });
    });
  },
);
