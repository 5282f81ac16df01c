/**
 * The cluster relay behind a second proxy hop: a client on its own loopback address
 * (127.0.0.7) reaches instance A through nginx (deploy/nginx/gateway-cluster.conf; every
 * instance has trust_proxy 127.0.0.1, nginx's address and not the client's), and A relays the
 * request for a bridged session to the instance that holds it, B. The client's address on
 * record is the real client's, never nginx's, A's or one the client wrote into
 * X-Forwarded-For, whether it came through nginx or straight to A.
 *
 * B writes its own line for the relayed request ("relayed request completed"), naming the
 * instance that relayed it and the client address that instance saw.
 */
import { Agent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUILT } from "../e2e/serve-process.js";
import { checkBinary } from "../support/binaries.js";
import { accessTokenFor } from "../support/login.js";
import { deployFile, NGINX, type RunningProxy, startNginxWith } from "../support/proxies.js";
import { redisAvailable } from "../support/redis.js";
import { freePort } from "../support/upstream.js";
import { LOGIN, startCluster, type TestCluster } from "./cluster.js";
import { callTool, openSession } from "./sessions.js";

const CAN_RUN = BUILT && redisAvailable() && checkBinary(NGINX).available;
const CLIENT_ADDRESS = "127.0.0.7";
const FORGED = "203.0.113.66";

/** The client's connections leave from CLIENT_ADDRESS. */
const fromClient = new Agent({ localAddress: CLIENT_ADDRESS });

/** The request-log lines an instance wrote after `from` (a length of its stdout) for `path`. */
function requestLines(
  stdout: string,
  from: number,
  path: string,
): Array<{ ip?: string; relayed_from?: string }> {
  return stdout
    .slice(from)
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { req?: { path?: string; ip?: string }; relayed_from?: string })
    .filter((l) => l.req?.path === path)
    .map((l) => (l.relayed_from ? { ip: l.req?.ip, relayed_from: l.relayed_from } : { ip: l.req?.ip }));
}

type Line = ReturnType<typeof requestLines>[number];

/**
 * Waits for an instance's lines for `path` that `keep` selects (written when the answer is
 * done, in batches), not for a time.
 */
async function linesWhenWritten(
  read: () => string,
  from: number,
  path: string,
  keep: (line: Line) => boolean = () => true,
) {
  const lines = () => requestLines(read(), from, path).filter(keep);
  let found = lines();
  for (let i = 0; found.length === 0 && i < 200; i++) {
    await new Promise((r) => setTimeout(r, 25));
    found = lines();
  }
  return found;
}

describe.skipIf(!CAN_RUN && process.env.CI !== "true")(
  "the cluster relay behind nginx with trust_proxy (run `npm run build` first)",
  () => {
    let cluster: TestCluster;
    /** nginx in front of instance A alone, so that the relayed hop is certain. */
    let toA: RunningProxy;
    let token: string;
    const a = () => cluster.instances[0] as TestCluster["instances"][number];
    const b = () => cluster.instances[1] as TestCluster["instances"][number];

    beforeAll(async () => {
      cluster = await startCluster({ instances: 2, proxy: "nginx" });
      toA = await startNginxWith(deployFile("nginx/gateway-cluster.conf"), {
        PORT: await freePort(),
        GATEWAY_SERVERS: `server 127.0.0.1:${a().port};`,
      });
      ({ accessToken: token } = await accessTokenFor(cluster.base, [`${cluster.base}/counter/mcp`], LOGIN));
    }, 180_000);
    afterAll(async () => {
      await toA?.close();
      await fromClient.close();
      await cluster?.stop();
    });

    /** A session B holds, opened straight at B by the client. */
    async function sessionOnB() {
      const session = await openSession(
        `http://127.0.0.1:${b().port}/counter/mcp`,
        token,
        cluster.redis.url,
        fromClient,
      );
      expect(session.owner).toBe(b().advertiseUrl);
      return session;
    }

    it.each([
      ["through nginx", () => toA.url],
      ["straight to A", () => `http://127.0.0.1:${a().port}`],
    ])(
      "%s, relayed to B: the real client's address, not a forged X-Forwarded-For",
      async (_how, base) => {
        const session = await sessionOnB();
        const fromA = a().process.stdout().length;
        const fromB = b().process.stdout().length;
        const call = await callTool(
          `${base()}/counter/mcp`,
          token,
          session.sid,
          "where",
          {},
          { dispatcher: fromClient, headers: { "x-forwarded-for": FORGED } },
        );
        expect(call.status).toBe(200);
        // Served by B's child: the request was relayed.
        expect(call.json?.instance).toBe("b");
        const onA = await linesWhenWritten(() => a().process.stdout(), fromA, "/counter/mcp");
        expect(onA).toEqual([{ ip: CLIENT_ADDRESS }]);
        // B's own line for what it served: the client A saw, and that A relayed it.
        // (Lines of the session's opening, straight at B, may still come after `fromB`.)
        const onB = await linesWhenWritten(
          () => b().process.stdout(),
          fromB,
          "/counter/mcp",
          (line) => line.relayed_from !== undefined,
        );
        expect(onB).toEqual([{ ip: CLIENT_ADDRESS, relayed_from: a().advertiseUrl }]);
        expect(b().process.stdout().slice(fromB)).not.toContain(FORGED);
        expect(a().process.stdout().slice(fromA)).not.toContain(FORGED);
      },
      60_000,
    );
  },
);
