/**
 * The owner's answers on the internal channel, as someone between the instances could change
 * them (a forwarder in front of the owner's internal listener, test/cluster/relay-tap.ts): two
 * gateway processes, one redis-server. The relaying instance passes on only the owner's own
 * answer to the request it sent: an altered answer and one made up in the owner's place never
 * reach the client as a result.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BUILT } from "../e2e/serve-process.js";
import { checkBinary } from "../support/binaries.js";
import { accessTokenFor } from "../support/login.js";
import { NGINX } from "../support/proxies.js";
import { redisAvailable } from "../support/redis.js";
import { type Instance, LOGIN, startCluster, type TestCluster } from "./cluster.js";
import type { RelayTap } from "./relay-tap.js";
import { callTool, openSession } from "./sessions.js";

const SLOW = 180_000;
const CAN_RUN = BUILT && redisAvailable() && checkBinary(NGINX).available;

/** The counter server's answer names its instance; in the SSE/JSON body its quotes are escaped. */
const HONEST = Buffer.from('\\"instance\\":\\"b\\"', "latin1");
const LIE = Buffer.from('\\"instance\\":\\"x\\"', "latin1");

describe.skipIf(!CAN_RUN && process.env.CI !== "true")("the owner's answers on the internal channel", () => {
  let cluster: TestCluster;
  let token: string;
  let sid: string;
  let tap: RelayTap;

  beforeAll(async () => {
    cluster = await startCluster({ instances: 2, proxy: "nginx", tap: true });
    token = (await accessTokenFor(cluster.base, [`${cluster.base}/counter/mcp`], LOGIN)).accessToken;
    const b = cluster.instances[1] as Instance;
    const session = await openSession(`http://127.0.0.1:${b.port}/counter/mcp`, token, cluster.redis.url);
    expect(session.owner).toBe(b.advertiseUrl);
    sid = session.sid;
    tap = b.tap as RelayTap;
  }, SLOW);
  afterEach(() => {
    tap.alter = undefined;
    tap.forge = undefined;
  });
  afterAll(async () => {
    await cluster?.stop();
  }, SLOW);

  /** A tool call on B's session sent to A (relayed over B's tap); a broken-off answer is "broken". */
  async function relayedWhere() {
    const a = cluster.instances[0] as Instance;
    try {
      return await callTool(`http://127.0.0.1:${a.port}/counter/mcp`, token, sid, "where");
    } catch (err) {
      return { status: 0, text: `broken: ${(err as Error).message}`, json: undefined };
    }
  }

  it("an honest answer is passed on, streamed as it was", async () => {
    const call = await relayedWhere();
    expect({ status: call.status, instance: call.json?.instance }).toEqual({ status: 200, instance: "b" });
  }, 60_000);

  it("an answer altered on the way never reaches the client as a result", async () => {
    let altered = 0;
    tap.alter = (chunk) => {
      const at = chunk.indexOf(HONEST);
      if (at < 0) return chunk;
      altered++;
      const out = Buffer.from(chunk);
      LIE.copy(out, at);
      return out;
    };
    const call = await relayedWhere();
    // The tap did change the owner's answer…
    expect(altered).toBe(1);
    // …and what the client got is no result at all, let alone the altered one.
    expect(call.json).toBeUndefined();
    expect(call.text).not.toContain('\\"instance\\":\\"x\\"');
  }, 60_000);

  it("an answer made up in the owner's place is refused: 502", async () => {
    tap.forge = () => ({
      status: 200,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        result: { content: [{ type: "text", text: JSON.stringify({ instance: "x" }) }] },
      }),
    });
    const call = await relayedWhere();
    expect(call.status, call.text).toBe(502);
    expect(call.json).toBeUndefined();
  }, 60_000);
});
