/**
 * `drain_delay` and `shutdown_timeout` set from the environment alone (MCP_GATEWAY_DRAIN_DELAY,
 * MCP_GATEWAY_SHUTDOWN_TIMEOUT; the config file names neither), as a container's deployment sets
 * them: after SIGTERM /readyz answers 503 "draining" on new connections while the listener still
 * accepts (the delay; with the default 0 it closes at once), and the process exits while a call
 * longer than the shutdown budget is still running (with the default 10 s, a 9 s call would
 * finish first). The gateway CLI as a process, one redis-server, a bridged stdio service.
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

/** /readyz on a new connection (as a health check makes it): its status, or "refused". */
async function readyz(port: number): Promise<number | "refused"> {
  const agent = new Agent({ pipelining: 0 });
  try {
    const res = await request(`http://127.0.0.1:${port}/readyz`, { dispatcher: agent });
    await res.body.dump();
    return res.statusCode;
  } catch {
    return "refused";
  } finally {
    await agent.close();
  }
}

describe.skipIf(!CAN_RUN && process.env.CI !== "true")(
  "drain_delay and shutdown_timeout from the environment",
  () => {
    let cluster: TestCluster;

    beforeAll(async () => {
      cluster = await startCluster({
        instances: 1,
        proxy: "nginx",
        shutdownTimeoutInFile: false,
        env: { MCP_GATEWAY_DRAIN_DELAY: "2s", MCP_GATEWAY_SHUTDOWN_TIMEOUT: "5s" },
      });
    }, SLOW);
    afterAll(async () => {
      await cluster?.stop();
    }, SLOW);

    it(
      "SIGTERM: draining while still accepting, then the exit inside the budget, before a longer call ends",
      async () => {
        const instance = cluster.instances[0] as Instance;
        const url = `http://127.0.0.1:${instance.port}/counter/mcp`;
        const token = (await accessTokenFor(cluster.base, [`${cluster.base}/counter/mcp`], LOGIN))
          .accessToken;
        expect(await readyz(instance.port)).toBe(200);
        const session = await openSession(url, token, cluster.redis.url);
        const marker = join(cluster.dir, "slow-started");
        const slow = callTool(url, token, session.sid, "slow", { ms: 9000, started: marker }).then(
          (answer) => ({ status: answer.status, slept: answer.json?.slept }),
          () => "cut off" as const,
        );
        await waitFor(() => existsSync(marker), 30_000);
        const exited = new Promise<void>((r) => instance.process.child.once("exit", () => r()));
        instance.process.child.kill("SIGTERM");

        // The drain delay: 503 on a fresh connection, so the listener still accepts.
        let seen: number | "refused" = 200;
        for (let i = 0; i < 200; i++) {
          seen = await readyz(instance.port);
          if (seen === 503) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        expect(seen).toBe(503);

        // The shutdown budget: the process ends the 9 s call rather than wait for its answer.
        await exited;
        expect(await slow).toBe("cut off");
      },
      SLOW,
    );
  },
);
