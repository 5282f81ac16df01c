/**
 * The internal channel as someone on the network between instances sees it (a recording
 * forwarder in front of each internal listener, test/cluster/relay-tap.ts): two gateway
 * processes behind nginx, one redis-server. An honest relay works; the captured request holds
 * no cluster secret; sent again it is refused, and so is every variation of it (other body, other
 * identity, other instance, no signature, a made-up one, the cluster secret as a bearer), and none
 * of them reach the session's child.
 */
import { randomBytes } from "node:crypto";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../bridge/helpers.js";
import { BUILT } from "../e2e/serve-process.js";
import { checkBinary } from "../support/binaries.js";
import { accessTokenFor } from "../support/login.js";
import { NGINX } from "../support/proxies.js";
import { redisAvailable } from "../support/redis.js";
import { CLUSTER_SECRET, type Instance, LOGIN, startCluster, type TestCluster } from "./cluster.js";
import { resendable } from "./relay-tap.js";
import { callTool, openSession } from "./sessions.js";

const SLOW = 180_000;
const CAN_RUN = BUILT && redisAvailable() && checkBinary(NGINX).available;

describe.skipIf(!CAN_RUN && process.env.CI !== "true")("the internal channel's signatures", () => {
  let cluster: TestCluster;
  let token: string;

  beforeAll(async () => {
    cluster = await startCluster({ instances: 2, proxy: "nginx", tap: true });
    token = (await accessTokenFor(cluster.base, [`${cluster.base}/counter/mcp`], LOGIN)).accessToken;
  }, SLOW);
  afterAll(async () => {
    await cluster?.stop();
  }, SLOW);

  const direct = (i: Instance) => `http://127.0.0.1:${i.port}/counter/mcp`;

  it(
    "a relayed request works once, carries no secret, and nothing made from it is accepted",
    async () => {
      const [a, b] = cluster.instances as [Instance, Instance];
      const tap = b.tap;
      if (!tap) throw new Error("no tap");
      // A session held by b, called through a: relayed over b's tap.
      const session = await openSession(direct(b), token, cluster.redis.url);
      expect(session.owner).toBe(b.advertiseUrl);
      const first = await callTool(direct(a), token, session.sid, "count");
      expect({ status: first.status, calls: first.json?.calls, instance: first.json?.instance }).toEqual({
        status: 200,
        calls: 1,
        instance: "b",
      });
      const relayed = tap.captured.filter((c) => c.method === "POST");
      expect(relayed).toHaveLength(1);
      const captured = relayed[0] as (typeof relayed)[number];

      // The secret is nowhere in what went over the wire.
      const wire = `${captured.method} ${captured.url}\n${JSON.stringify(captured.headers)}\n${captured.body}`;
      expect(wire).not.toContain(CLUSTER_SECRET);
      expect(captured.headers.authorization).toBeUndefined();
      expect(captured.headers["x-mcp-gateway-cluster-signature"]).toMatch(/^[A-Za-z0-9_-]{43}$/);

      const internal = `http://127.0.0.1:${b.internalPort}${captured.url}`;
      const send = async (
        headers: Record<string, string>,
        body: Buffer | string = captured.body,
        url = internal,
      ) => {
        const res = await request(url, { method: "POST", headers, body });
        return { status: res.statusCode, text: await res.body.text() };
      };
      const replayHeaders = resendable(captured.headers);
      const otherBody = Buffer.from(captured.body.toString("utf8").replace('"count"', '"where"'));
      const without = (names: string[]) =>
        Object.fromEntries(Object.entries(replayHeaders).filter(([n]) => !names.includes(n)));
      const signatureHeaders = [
        "x-mcp-gateway-cluster-signature",
        "x-mcp-gateway-cluster-time",
        "x-mcp-gateway-cluster-nonce",
        "x-mcp-gateway-cluster-headers",
      ];
      const attempts: Array<{ what: string; headers: Record<string, string>; body?: Buffer; url?: string }> =
        [
          { what: "the captured request again", headers: replayHeaders },
          {
            what: "again, through the tap",
            headers: replayHeaders,
            url: `http://127.0.0.1:${tap.port}${captured.url}`,
          },
          { what: "another body", headers: replayHeaders, body: otherBody },
          { what: "another user", headers: { ...replayHeaders, "x-user-id": "mallory" } },
          {
            what: "a fresh nonce",
            headers: {
              ...replayHeaders,
              "x-mcp-gateway-cluster-nonce": randomBytes(16).toString("base64url"),
            },
          },
          {
            what: "a fresh time",
            headers: {
              ...replayHeaders,
              "x-mcp-gateway-cluster-time": String(Math.floor(Date.now() / 1000)),
            },
          },
          { what: "no signature", headers: without(signatureHeaders) },
          {
            what: "a made-up signature",
            headers: {
              ...replayHeaders,
              "x-mcp-gateway-cluster-nonce": randomBytes(16).toString("base64url"),
              "x-mcp-gateway-cluster-signature": randomBytes(32).toString("base64url"),
            },
          },
          {
            what: "the secret as a bearer",
            headers: { ...without(signatureHeaders), authorization: `Bearer ${CLUSTER_SECRET}` },
          },
        ];
      // At the other instance (which never saw it): signed for b, not for a.
      attempts.push({
        what: "at another instance",
        headers: replayHeaders,
        url: `http://127.0.0.1:${a.internalPort}${captured.url}`,
      });
      const outcomes = [];
      for (const attempt of attempts) {
        const out = await send(attempt.headers, attempt.body, attempt.url);
        outcomes.push({ what: attempt.what, status: out.status, text: out.text.slice(0, 160) });
      }
      expect(outcomes.filter((o) => o.status !== 401)).toEqual([]);
      // Why, in b's log (never the signature itself; the log is written asynchronously).
      await waitFor(
        () => (b.process.stdout().match(/request refused/g) ?? []).length >= attempts.length - 1,
        30_000,
      );
      const log = b.process.stdout();
      expect(log).toContain('"reason":"replayed"');
      expect(log).toContain('"reason":"bad signature"');
      expect(log).toContain('"reason":"unsigned"');
      expect(log).not.toContain(captured.headers["x-mcp-gateway-cluster-signature"] as string);

      // None of them reached the child; the honest relay goes on working.
      const next = await callTool(direct(a), token, session.sid, "count");
      expect({ status: next.status, calls: next.json?.calls }).toEqual({ status: 200, calls: 2 });
    },
    SLOW,
  );

  it(
    "a stale signature is refused",
    async () => {
      const [a, b] = cluster.instances as [Instance, Instance];
      const tap = b.tap;
      if (!tap) throw new Error("no tap");
      const session = await openSession(direct(b), token, cluster.redis.url);
      const before = tap.captured.length;
      expect((await callTool(direct(a), token, session.sid, "count")).status).toBe(200);
      const captured = tap.captured.slice(before).find((c) => c.method === "POST");
      if (!captured) throw new Error("nothing relayed");
      const headers = {
        ...resendable(captured.headers),
        "x-mcp-gateway-cluster-time": String(Math.floor(Date.now() / 1000) - 3600),
        "x-mcp-gateway-cluster-nonce": randomBytes(16).toString("base64url"),
      };
      const res = await request(`http://127.0.0.1:${b.internalPort}${captured.url}`, {
        method: "POST",
        headers,
        body: captured.body,
      });
      await res.body.dump();
      expect(res.statusCode).toBe(401);
      // The log is written asynchronously.
      await waitFor(() => b.process.stdout().includes('"reason":"stale"'), 30_000);
    },
    SLOW,
  );
});
