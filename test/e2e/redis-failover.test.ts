/**
 * Redis high availability as it is deployed: one primary, two replicas and three sentinels
 * (real redis-server processes on loopback), the gateway configured with the sentinels only.
 * Under registration and refresh load the primary is killed (-9). The gateway must follow the
 * new primary, answer 503 with Retry-After (never 500) while the failover runs, and, with
 * `store.redis.wait_replicas: 1`, lose nothing it acknowledged: every client it answered 201
 * for can still read its registration, and every grant refreshes with the last refresh token it
 * was given.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addLocalUser, obtainTokens, refresh, SERVICES, sleep } from "../oauth/helpers.js";
import { SEALING } from "../oauth/rotation-scenarios.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { REDIRECT_URI, type RegisteredClient } from "../support/oauth-client.js";
import { startRedisFailoverSet, type TestRedisFailoverSet } from "../support/redis.js";

const GRANTS = 4;
const REGISTER_LOOPS = 3;
/** The load registers far more clients than the anonymous-registration brake allows. */
const NO_REGISTER_BRAKE = { register: { per_address: { max: 1_000_000 } } };

interface Answer {
  kind: "register" | "refresh";
  status: number;
  retryAfter: boolean;
  error?: string;
  at: number;
}

interface Grant {
  client: RegisteredClient;
  refreshToken: string;
}

/** A request as a client retries it: again after Retry-After while the answer is 503. */
async function untilAnswered<T extends { status: number }>(send: () => Promise<T>, tries = 20): Promise<T> {
  for (let i = 1; ; i++) {
    const res = await send();
    if (res.status !== 503 || i >= tries) return res;
    await sleep(1_000);
  }
}

async function register(gw: RunningGateway) {
  const res = await fetch(`${gw.url}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "failover",
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: "none",
    }),
  });
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  return { status: res.status, retryAfter: res.headers.has("retry-after"), body };
}

describe("Redis Sentinel failover under load", () => {
  let set: TestRedisFailoverSet | undefined;
  let gw: RunningGateway;
  const grants: Grant[] = [];

  beforeAll(async () => {
    set = await startRedisFailoverSet();
    if (!set) return;
    gw = await startFullGateway({
      ...SERVICES,
      ...SEALING,
      store: {
        type: "redis",
        redis: {
          sentinels: set.sentinels,
          sentinel_name: set.name,
          key_prefix: "ha:",
          wait_replicas: 1,
          wait_timeout: 5,
        },
      },
      rate_limits: NO_REGISTER_BRAKE,
    });
    await addLocalUser(gw);
    for (let i = 0; i < GRANTS; i++) {
      const client = (await register(gw)).body as unknown as RegisteredClient;
      const tokens = await obtainTokens(gw, client, { resource: `${gw.url}/notes/mcp` });
      grants.push({ client, refreshToken: tokens.refresh_token });
    }
  }, 120_000);
  afterAll(async () => {
    await gw?.close({ wipe: true });
    await set?.stop();
  });

  it("follows the new primary, answers only 2xx or 503 + Retry-After, and keeps every acknowledged write", {
    timeout: 180_000,
  }, async () => {
    if (!set) throw new Error("redis-server and redis-cli are required");
    const answers: Answer[] = [];
    const acknowledged: RegisteredClient[] = [];
    let running = true;
    const loops = [
      ...Array.from({ length: REGISTER_LOOPS }, async () => {
        while (running) {
          const res = await register(gw);
          answers.push({ kind: "register", ...res, error: res.body.error as string, at: Date.now() });
          if (res.status === 201) acknowledged.push(res.body as unknown as RegisteredClient);
          else await sleep(20);
        }
      }),
      ...grants.map(async (grant) => {
        while (running) {
          const res = await refresh(gw, grant.client, grant.refreshToken);
          answers.push({
            kind: "refresh",
            status: res.status,
            retryAfter: res.headers.has("retry-after"),
            error: res.body.error as string,
            at: Date.now(),
          });
          if (res.status === 200) grant.refreshToken = res.body.refresh_token as string;
          else await sleep(20);
        }
      }),
    ];
    const tally = (list: Answer[]) =>
      Object.entries(
        list.reduce<Record<string, number>>((acc, a) => {
          const key = `${a.kind} ${a.status}${a.error ? ` ${a.error}` : ""}`;
          acc[key] = (acc[key] ?? 0) + 1;
          return acc;
        }, {}),
      ).sort();
    const ok = (since: number) => answers.filter((a) => a.at >= since && a.status < 300).length;
    const waitFor = async (what: string, cond: () => boolean | Promise<boolean>, ms = 90_000) => {
      const deadline = Date.now() + ms;
      while (!(await cond())) {
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${what}; answers: ${JSON.stringify(tally(answers))}`);
        await sleep(50);
      }
    };
    try {
      await waitFor("load before the crash", () => ok(0) >= 40);
      await set.crash(set.firstPrimaryPort);
      const crashed = Date.now();
      await waitFor("a new primary", async () => {
        const port = await set?.primaryPort();
        return port !== undefined && port !== set?.firstPrimaryPort;
      });
      const promoted = Date.now();
      // The gateway follows: both kinds of write succeed again on the new primary.
      await waitFor(
        "registrations and refreshes after the failover",
        () =>
          answers.filter((a) => a.at >= promoted && a.kind === "register" && a.status === 201).length >= 10 &&
          answers.filter((a) => a.at >= promoted && a.kind === "refresh" && a.status === 200).length >= 10,
      );
      console.log(`failover: new primary ${promoted - crashed} ms after the crash`);
    } finally {
      running = false;
      await Promise.all(loops);
    }

    console.log("answers:", JSON.stringify(tally(answers)));
    const wrong = answers.filter((a) => !(a.status < 300 || (a.status === 503 && a.retryAfter)));
    expect(tally(wrong)).toEqual([]);
    // The failover was felt (else this tested nothing), and was answered 503.
    expect(answers.some((a) => a.status === 503)).toBe(true);

    // Nothing acknowledged was lost: each registration reads back, each grant refreshes.
    for (const client of acknowledged) {
      const res = await untilAnswered(() =>
        fetch(client.registration_client_uri, {
          headers: { authorization: `Bearer ${client.registration_access_token}` },
        }),
      );
      expect(res.status, `registration ${client.client_id}: ${await res.clone().text()}`).toBe(200);
    }
    for (const grant of grants) {
      const res = await untilAnswered(() => refresh(gw, grant.client, grant.refreshToken));
      expect(`${res.status} ${res.body.error ?? ""}`.trim()).toBe("200");
    }
  });

  it("with wait_replicas, a write no replica confirms is a 503 the client retries; without, it is acknowledged", {
    timeout: 120_000,
  }, async () => {
    if (!set) throw new Error("redis-server and redis-cli are required");
    const primary = await set.primaryPort();
    // After the failover above: the new primary and the one replica it has left.
    const replica = set.serverPorts.find((p) => p !== primary && p !== set?.firstPrimaryPort) as number;
    await set.crash(replica);
    const res = await register(gw);
    expect(res.status).toBe(503);
    expect(res.retryAfter).toBe(true);
    expect(res.body.error).toBe("temporarily_unavailable");

    // The same store without WAIT: the write is acknowledged with no replica holding it (what
    // asynchronous replication risks losing in a failover).
    const unwaited = await startFullGateway({
      ...SERVICES,
      ...SEALING,
      store: {
        type: "redis",
        redis: { sentinels: set.sentinels, sentinel_name: set.name, key_prefix: "ha:" },
      },
      rate_limits: NO_REGISTER_BRAKE,
    });
    try {
      expect((await register(unwaited)).status).toBe(201);
    } finally {
      await unwaited.close({ wipe: true });
    }
  });
});
