/**
 * SIGTERM takes an instance out of a load balancer's rotation before it refuses anything: from
 * the signal on, /readyz answers 503 "draining" (on new connections: for `drain_delay` the
 * listener still accepts and serves), an in-flight tool call finishes, then the listener closes
 * and the process exits 0. The gateway CLI as a process, one redis-server, a bridged stdio
 * service (test/cluster/cluster.ts, one instance).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../bridge/helpers.js";
import { BUILT } from "../e2e/serve-process.js";
import { checkBinary } from "../support/binaries.js";
import { accessTokenFor } from "../support/login.js";
import { NGINX } from "../support/proxies.js";
import { redisAvailable } from "../support/redis.js";
import { type Instance, LOGIN, startCluster, type TestCluster } from "./cluster.js";
import { callTool, openSession } from "./sessions.js";

const SLOW = 120_000;
const CAN_RUN = BUILT && redisAvailable() && checkBinary(NGINX).available;

/** A new connection every time, as a load balancer's health check makes. */
async function readyz(port: number): Promise<{ status: number; body: Record<string, unknown> } | "refused"> {
  const agent = new Agent({ pipelining: 0 });
  try {
    const res = await request(`http://127.0.0.1:${port}/readyz`, { dispatcher: agent });
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
  } catch (err) {
    const code =
      (err as NodeJS.ErrnoException).code ?? (err as { cause?: NodeJS.ErrnoException }).cause?.code;
    if (code === "ECONNREFUSED") return "refused";
    throw err;
  } finally {
    await agent.close();
  }
}

describe.skipIf(!CAN_RUN && process.env.CI !== "true")("/readyz while draining", () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startCluster({ instances: 1, proxy: "nginx", extraConfig: ["drain_delay: 3"] });
  }, SLOW);
  afterAll(async () => {
    await cluster?.stop();
  }, SLOW);

  it(
    "SIGTERM: 503 draining while still accepting, the in-flight call finishes, then the listener closes",
    async () => {
      const instance = cluster.instances[0] as Instance;
      const url = `http://127.0.0.1:${instance.port}/counter/mcp`;
      const token = (await accessTokenFor(cluster.base, [`${cluster.base}/counter/mcp`], LOGIN)).accessToken;
      expect(await readyz(instance.port)).toMatchObject({ status: 200, body: { status: "ready" } });

      const session = await openSession(url, token, cluster.redis.url);
      const marker = join(cluster.dir, "slow-started");
      let settled = false;
      const slow = callTool(url, token, session.sid, "slow", { ms: 6000, started: marker }).finally(() => {
        settled = true;
      });
      await waitFor(() => existsSync(marker), 30_000);
      const exited = new Promise<number | null>((r) =>
        instance.process.child.once("exit", (code) => r(code)),
      );
      instance.process.child.kill("SIGTERM");

      // Out of rotation, on a fresh connection: the listener still accepts.
      let seen: Awaited<ReturnType<typeof readyz>> = "refused";
      for (let i = 0; i < 200; i++) {
        seen = await readyz(instance.port);
        if (seen !== "refused" && seen.status === 503) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(seen).toEqual({ status: 503, body: { status: "draining", store: "redis", reason: "draining" } });
      expect(settled).toBe(false);

      // Then it stops accepting, with the call still running; the call finishes; exit 0.
      let refusedWhileInFlight = false;
      for (let i = 0; i < 500 && !settled; i++) {
        if ((await readyz(instance.port)) === "refused") {
          refusedWhileInFlight = !settled;
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      const answer = await slow;
      expect({ status: answer.status, slept: answer.json?.slept }).toEqual({ status: 200, slept: 6000 });
      expect(refusedWhileInFlight).toBe(true);
      expect(await exited).toBe(0);
    },
    SLOW,
  );
});
