/**
 * Instance loss and rolling restart, with three gateway processes behind nginx round-robin
 * (deploy/nginx/gateway-cluster.conf, which retries a refused connection on the next instance)
 * and one redis-server:
 * - kill -9 of one instance under load: the sessions the others hold keep working, new sessions
 *   start, no 5xx but for requests that were in flight when it died; its own sessions answer 404
 *   (so a client starts a new one) and their owner entries go.
 * - SIGTERM drains: an in-flight tool call finishes, open SSE streams (a bridged session's, and a
 *   proxied one's) end cleanly, requests meanwhile go elsewhere without a 5xx, the process exits 0
 *   within shutdown_timeout and leaves no owner entry behind; started again, it takes requests.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../bridge/helpers.js";
import { BUILT } from "../e2e/serve-process.js";
import { checkBinary } from "../support/binaries.js";
import { accessTokenFor } from "../support/login.js";
import { INITIALIZE, MCP_HEADERS } from "../support/mcp-http.js";
import { NGINX } from "../support/proxies.js";
import { redisAvailable } from "../support/redis.js";
import { BrowserProvider, type Connected, connectV2, toolJson } from "./clients.js";
import { LOGIN, startCluster, type TestCluster } from "./cluster.js";
import { callTool, openSession, ownerEntry, type RawSession } from "./sessions.js";

const SLOW = 180_000;
const CAN_RUN = BUILT && redisAvailable() && checkBinary(NGINX).available;

interface Outcome {
  started: number;
  ended: number;
  status: number;
  what: string;
}

/** Workers sending `step()` again and again until stopped; every answer recorded. */
function load(workers: number, step: (n: number) => Promise<{ status: number; what: string }>) {
  const outcomes: Outcome[] = [];
  let running = true;
  let n = 0;
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      const started = performance.now();
      let result: { status: number; what: string };
      try {
        result = await step(n++);
      } catch (err) {
        result = { status: 599, what: `client error: ${(err as Error).message}` };
      }
      outcomes.push({ started, ended: performance.now(), ...result });
    }
  });
  return {
    outcomes,
    /** Answers that came back after `since`. */
    doneAfter: (since: number) => outcomes.filter((o) => o.ended > since).length,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

async function ownerEntries(cluster: TestCluster, owner: string): Promise<number> {
  const redis = new Redis(cluster.redis.url);
  try {
    let n = 0;
    for (const key of await redis.keys("mcpgw:cluster_sessions:*")) {
      const raw = await redis.get(key);
      if (raw && (JSON.parse(raw) as { owner: string }).owner === owner) n++;
    }
    return n;
  } finally {
    redis.disconnect();
  }
}

describe.skipIf(!CAN_RUN && process.env.CI !== "true")("three instances: one lost, one restarted", () => {
  let cluster: TestCluster;
  let token: string;
  let echoToken: string;
  let url: string;

  beforeAll(async () => {
    cluster = await startCluster({ instances: 3, proxy: "nginx" });
    url = `${cluster.base}/counter/mcp`;
    token = (await accessTokenFor(cluster.base, [url], LOGIN)).accessToken;
    echoToken = (await accessTokenFor(cluster.base, [`${cluster.base}/echo/mcp`], LOGIN)).accessToken;
  }, SLOW);
  afterAll(async () => {
    await cluster?.stop();
  }, SLOW);

  /**
   * Until nginx sends requests to instance `i` again. nginx leaves an instance it failed to
   * reach out of the rotation for `fail_timeout` (10 s by default): one restarted within that
   * gets nothing until it has passed, however many sessions are opened meanwhile.
   */
  async function backInRotation(i: number): Promise<void> {
    const seen = cluster.requestsSeen(i, "/healthz");
    const until = performance.now() + 30_000;
    while (cluster.requestsSeen(i, "/healthz") === seen) {
      if (performance.now() > until) throw new Error(`nginx sent instance ${i} nothing for 30 s`);
      await (await fetch(`${cluster.base}/healthz`)).text();
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Sessions until every instance holds at least `each` (round-robin spreads them). */
  async function sessionsOnEvery(each: number): Promise<Map<string, RawSession[]>> {
    const by = new Map<string, RawSession[]>(cluster.instances.map((i) => [i.advertiseUrl, []]));
    for (let tries = 0; tries < 40 && [...by.values()].some((l) => l.length < each); tries++) {
      const s = await openSession(url, token, cluster.redis.url);
      by.get(s.owner)?.push(s);
      // A session is two requests; one more every other time varies where the next one lands.
      if (tries % 2 === 1) await (await fetch(`${cluster.base}/healthz`)).text();
    }
    for (const [owner, list] of by) expect({ owner, n: list.length >= each }).toEqual({ owner, n: true });
    return by;
  }

  it(
    "kill -9 under load: the others' sessions go on, new sessions start, 5xx only for what was in flight",
    async () => {
      const by = await sessionsOnEvery(2);
      const victim = cluster.instances[2];
      if (!victim) throw new Error("no third instance");
      const survivors = [...by.entries()]
        .filter(([owner]) => owner !== victim.advertiseUrl)
        .flatMap(([, l]) => l);
      const lost = by.get(victim.advertiseUrl) ?? [];
      const pidOf = new Map<string, number>();
      // SDK v2 clients (their own session handling): one on the victim, one elsewhere.
      const provider = new BrowserProvider(cluster.base);
      const sdk = new Map<string, Connected>();
      for (let tries = 0; tries < 20 && sdk.size < 2; tries++) {
        // A connect is a fixed number of requests: one more now and then moves the next one along.
        if (tries % 2 === 1) await (await fetch(`${cluster.base}/healthz`)).text();
        const c = await connectV2(url, provider);
        const onVictim =
          (await ownerEntry(cluster.redis.url, "counter", c.sessionId)) === victim.advertiseUrl;
        const role = onVictim ? "victim" : "survivor";
        if (sdk.has(role)) await c.client.close();
        else sdk.set(role, c);
      }
      const onVictim = sdk.get("victim");
      const onSurvivor = sdk.get("survivor");
      if (!onVictim || !onSurvivor) throw new Error("no SDK session on each side");
      await onVictim.client.callTool({ name: "count", arguments: {} });
      await onSurvivor.client.callTool({ name: "count", arguments: {} });

      const traffic = load(4, async (n) => {
        if (n % 4 === 3) {
          // A new session, wherever it lands.
          const init = await request(url, {
            method: "POST",
            headers: { ...MCP_HEADERS, authorization: `Bearer ${token}` },
            body: JSON.stringify(INITIALIZE),
          });
          await init.body.dump();
          return { status: init.statusCode, what: "initialize" };
        }
        const s = survivors[n % survivors.length] as RawSession;
        const out = await callTool(url, token, s.sid, "count");
        const pid = out.json?.pid as number | undefined;
        if (out.status === 200 && pid !== undefined) {
          if (pidOf.has(s.sid) && pidOf.get(s.sid) !== pid) return { status: 598, what: "another child" };
          pidOf.set(s.sid, pid);
        }
        return { status: out.status, what: `count on ${s.owner}: ${out.text.slice(0, 200)}` };
      });
      try {
        await waitFor(() => traffic.outcomes.length >= 30, 60_000);
        const signalled = performance.now();
        const died = new Promise<number>((r) =>
          victim.process.child.once("exit", () => r(performance.now())),
        );
        victim.process.child.kill("SIGKILL");
        const diedAt = await died;
        await waitFor(() => traffic.doneAfter(diedAt) >= 60, 90_000);
        await traffic.stop();

        // In flight on the dead instance: sent before it was gone, answered after the signal.
        const inFlight = (o: Outcome) => o.started < diedAt && o.ended > signalled;
        const failed = traffic.outcomes.filter((o) => o.status >= 500);
        expect(failed.filter((f) => !inFlight(f)).map((f) => ({ ...f, signalled, diedAt }))).toEqual([]);
        expect(failed.length).toBeLessThanOrEqual(traffic.outcomes.filter(inFlight).length);
        // And every other answer was a success.
        expect(traffic.outcomes.filter((o) => o.status !== 200 && o.status < 500)).toEqual([]);
      } finally {
        await traffic.stop();
      }

      // The SDK client on a survivor carries on in its session, with its child.
      expect(toolJson(await onSurvivor.client.callTool({ name: "count", arguments: {} })).calls).toBe(2);
      // The one on the victim is told its session is gone; it starts a new one, which works.
      await expect(onVictim.client.callTool({ name: "count", arguments: {} })).rejects.toThrow(
        /404|not found/i,
      );
      await onVictim.client.close().catch(() => undefined);
      const renewed = await connectV2(url, provider);
      expect(toolJson(await renewed.client.callTool({ name: "count", arguments: {} })).calls).toBe(1);
      for (const c of [onSurvivor, renewed]) {
        await c.transport.terminateSession();
        await c.client.close();
      }

      // The dead instance's sessions: 404, whichever instance is asked, and their entries go.
      for (const s of lost) {
        const out = await callTool(url, token, s.sid, "count");
        expect({ status: out.status, text: out.text }).toMatchObject({ status: 404 });
        expect(await ownerEntry(cluster.redis.url, "counter", s.sid)).toBeUndefined();
      }
      // The client's next step per the MCP spec, a new session, works.
      const fresh = await openSession(url, token, cluster.redis.url);
      expect((await callTool(url, token, fresh.sid, "count")).json?.calls).toBe(1);
    },
    SLOW,
  );

  it(
    "rolling restart: the killed instance comes back; SIGTERM on another drains it cleanly",
    async () => {
      // The instance the test before killed comes back (run alone, this test has all three).
      const killed = cluster.instances[2]?.process.child;
      if (killed && (killed.exitCode !== null || killed.signalCode !== null)) await cluster.restart(2);
      const by = await sessionsOnEvery(1);
      const draining = cluster.instances[1];
      if (!draining) throw new Error("no second instance");
      const held = (by.get(draining.advertiseUrl) ?? [])[0] as RawSession;
      const elsewhere = [...by.entries()].filter(([o]) => o !== draining.advertiseUrl).flatMap(([, l]) => l);

      // A slow tool call in flight on the draining instance's child.
      const marker = join(cluster.dir, "slow-started");
      const slow = callTool(url, token, held.sid, "slow", { ms: 2500, started: marker });
      await waitFor(() => existsSync(marker), 30_000);

      // Open GET streams: the held session's (through whichever instance nginx picks), and a
      // proxied one of the remote upstream, on the draining instance itself.
      const openStream = async (target: string, headers: Record<string, string>) => {
        const res = await request(target, {
          method: "GET",
          headers: { ...headers, accept: "text/event-stream" },
        });
        expect(res.statusCode).toBe(200);
        return {
          ended: res.body.text().then(
            () => "ended cleanly",
            (err: Error) => `broken: ${err.message}`,
          ),
        };
      };
      const bridged = await openStream(url, {
        authorization: `Bearer ${token}`,
        "mcp-session-id": held.sid,
        "mcp-protocol-version": "2025-06-18",
      });
      const direct = `http://127.0.0.1:${draining.port}/echo/mcp`;
      const echo = await request(direct, {
        method: "POST",
        headers: { ...MCP_HEADERS, authorization: `Bearer ${echoToken}` },
        body: JSON.stringify(INITIALIZE),
      });
      await echo.body.dump();
      const echoHeaders = {
        authorization: `Bearer ${echoToken}`,
        "mcp-session-id": echo.headers["mcp-session-id"] as string,
        "mcp-protocol-version": "2025-06-18",
      };
      const initialized = await request(direct, {
        method: "POST",
        headers: { ...MCP_HEADERS, ...echoHeaders },
        body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
      });
      await initialized.body.dump();
      const proxied = await openStream(direct, echoHeaders);

      // Traffic through nginx all along: calls on sessions the other instances hold, new sessions.
      const traffic = load(3, async (n) => {
        if (n % 3 === 2) {
          const init = await request(url, {
            method: "POST",
            headers: { ...MCP_HEADERS, authorization: `Bearer ${token}` },
            body: JSON.stringify(INITIALIZE),
          });
          await init.body.dump();
          return { status: init.statusCode, what: "initialize" };
        }
        const s = elsewhere[n % elsewhere.length] as RawSession;
        const out = await callTool(url, token, s.sid, "count");
        return { status: out.status, what: `count on ${s.owner}: ${out.text.slice(0, 200)}` };
      });
      try {
        await waitFor(() => traffic.outcomes.length >= 10, 60_000);
        const signalled = performance.now();
        const exited = new Promise<number | null>((r) =>
          draining.process.child.once("exit", (code) => r(code)),
        );
        draining.process.child.kill("SIGTERM");

        // The call in flight finishes; the streams end, cleanly.
        const answer = await slow;
        expect({ status: answer.status, slept: answer.json?.slept }).toEqual({ status: 200, slept: 2500 });
        expect(await bridged.ended).toBe("ended cleanly");
        expect(await proxied.ended).toBe("ended cleanly");
        // Out with exit code 0, within shutdown_timeout (8 s) and the 2 s the hard stop adds.
        expect(await exited).toBe(0);
        const exitedAt = performance.now();
        expect(exitedAt - signalled).toBeLessThan(10_000);
        await waitFor(() => traffic.doneAfter(exitedAt) >= 20, 90_000);
        await traffic.stop();
        expect(traffic.outcomes.filter((o) => o.status !== 200)).toEqual([]);
      } finally {
        await traffic.stop();
      }
      // Its sessions ended with it, entries and all: the client is told to start again.
      expect(await ownerEntries(cluster, draining.advertiseUrl)).toBe(0);
      expect((await callTool(url, token, held.sid, "count")).status).toBe(404);

      // Started again, it takes its share of new sessions.
      await cluster.restart(1);
      await backInRotation(1);
      const again = await sessionsOnEvery(1);
      const back = (again.get(draining.advertiseUrl) ?? [])[0] as RawSession;
      expect((await callTool(url, token, back.sid, "count")).json?.calls).toBe(1);
    },
    SLOW,
  );
});
