/**
 * A store outage under load: a real redis-server (append-only file, fsync always) stopped by
 * SIGTERM and by SIGKILL, for 3 s and for 15 s, while clients keep refreshing and /verify keeps
 * checking their access tokens, over two gateway instances. Every answer is a success or a 503
 * with Retry-After (never a 500), no grant is lost (each client refreshes after the outage with
 * the last refresh token it was given), and the first refresh succeeds within 2 s of Redis
 * answering again. /verify serves a verdict it cached before the outage only within the
 * revocation bound, then 503; and, one token at a time, /verify and the MCP route admit a
 * token whose verdict is cached right up to that bound, then answer 503.
 *
 * And the embedded store: an SQLite file locked by another process past the busy timeout makes
 * a refresh 503 and spends nothing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addLocalUser,
  addResourceServers,
  LOGIN,
  obtainTokens,
  RESOURCE_SERVERS,
  refresh,
  SERVICES,
  sleep,
} from "../oauth/helpers.js";
import { SEALING } from "../oauth/rotation-scenarios.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { postInitialize, type RawResponse } from "../support/mcp-http.js";
import {
  authorizeUrl,
  Browser,
  formField,
  pkcePair,
  type RegisteredClient,
  registerClient,
} from "../support/oauth-client.js";
import { startRedis, type TestRedis } from "../support/redis.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";

/** Verdicts cached for 1 s, so /verify needs the store often enough to feel the outage. */
const REVOCATION_CACHE_S = 1;
const CLIENTS = 8;
/** Pause between one client's requests: load, without starving the event loop it shares. */
const PACE_MS = 25;
/** Issue 9's bound: first successful refresh after Redis is observably back. */
const BACK_WITHIN_MS = 2_000;

interface Answer {
  kind: "refresh" | "verify";
  /** Which grant's loop sent it. */
  grant: number;
  sentAt: number;
  at: number;
  status: number;
  retryAfter: string | null;
  error?: string;
}

interface Grant {
  client: RegisteredClient;
  accessToken: string;
  refreshToken: string;
}

async function verify(gw: RunningGateway, token: string): Promise<Omit<Answer, "kind" | "grant" | "sentAt">> {
  const res = await fetch(`${gw.url}/verify?service=notes`, {
    headers: { authorization: `Bearer ${token}`, connection: "close" },
  });
  await res.arrayBuffer();
  return { at: Date.now(), status: res.status, retryAfter: res.headers.get("retry-after") };
}

/**
 * Refresh and /verify loops for every grant until `stop()`: a refresh answered 200 moves the
 * client to its new token; a 503 is retried with the same one, as a client honouring
 * temporarily_unavailable does.
 */
function load(pair: RunningGateway[], grants: Grant[]) {
  const answers: Answer[] = [];
  let running = true;
  const loops = grants.flatMap((grant, i) => [
    (async () => {
      for (let n = 0; running; n++) {
        const gw = pair[(i + n) % pair.length] as RunningGateway;
        const sentAt = Date.now();
        const res = await refresh(gw, grant.client, grant.refreshToken).catch(() => undefined);
        if (!res) continue;
        answers.push({
          kind: "refresh",
          grant: i,
          sentAt,
          at: Date.now(),
          status: res.status,
          retryAfter: res.headers.get("retry-after"),
          error: res.body.error as string | undefined,
        });
        if (res.status === 200) {
          grant.refreshToken = res.body.refresh_token as string;
          grant.accessToken = res.body.access_token as string;
        }
        await sleep(PACE_MS);
      }
    })(),
    (async () => {
      for (let n = 0; running; n++) {
        const gw = pair[(i + n + 1) % pair.length] as RunningGateway;
        const sentAt = Date.now();
        const res = await verify(gw, grant.accessToken).catch(() => undefined);
        if (res) answers.push({ kind: "verify", grant: i, sentAt, ...res });
        await sleep(PACE_MS);
      }
    })(),
  ]);
  return {
    answers,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

describe("a Redis outage under refresh and /verify load, two instances", () => {
  let redis: TestRedis;
  const pair: RunningGateway[] = [];
  const grants: Grant[] = [];

  beforeAll(async () => {
    redis = (await startRedis({ persist: true })) as TestRedis;
    if (!redis) return;
    // The load refreshes faster than the /token brake allows one address; the brakes are not
    // what this file tests (rate-limits.test.ts does), so they are off.
    const tree = {
      ...SERVICES,
      ...SEALING,
      tokens: { revocation_cache: REVOCATION_CACHE_S },
      rate_limits: { enabled: false },
    };
    const first = await startFullGateway(tree, { redisUrl: redis.url });
    await addLocalUser(first);
    const second = await startFullGateway(
      { ...tree, public_url: first.config.public_url, store: first.config.store },
      { dataDir: first.dataDir },
    );
    pair.push(first, second);
    for (let i = 0; i < CLIENTS; i++) {
      const client = await registerClient(first.url);
      const tokens = await obtainTokens(first, client, { resource: `${first.url}/notes/mcp` });
      grants.push({ client, accessToken: tokens.access_token, refreshToken: tokens.refresh_token });
    }
  });
  afterAll(async () => {
    for (const gw of pair.reverse()) await gw.close({ wipe: true });
    await redis?.stop();
  });

  const outages: Array<["SIGTERM" | "SIGKILL", number]> = [
    ["SIGTERM", 3],
    ["SIGKILL", 3],
    ["SIGTERM", 15],
    ["SIGKILL", 15],
  ];

  it.each(outages)(
    "Redis stopped by %s for %i s: only 200 or 503 + Retry-After, no grant lost, back within 2 s",
    async (signal, seconds) => {
      if (!redis) throw new Error("redis-server is required");
      const running = load(pair, grants);
      await sleep(1_000);
      await redis.kill(signal);
      const down = Date.now();
      await sleep(seconds * 1_000);
      // Redis may answer the gateways before it answers this test's own readiness probe.
      const restarting = Date.now();
      // Back = the moment this test's own PING is answered, not when the process was spawned.
      const up = await redis.start();
      // Until every client has refreshed again since (or 10 s have passed).
      const deadline = up + 10_000;
      const refreshedSince = () =>
        new Set(
          running.answers
            .filter((a) => a.kind === "refresh" && a.status === 200 && a.at >= up)
            .map((a) => a.grant),
        ).size;
      while (refreshedSince() < CLIENTS && Date.now() < deadline) await sleep(50);
      await running.stop();

      const { answers } = running;
      const summary = (list: Answer[]) =>
        Object.entries(
          list.reduce<Record<string, number>>((acc, a) => {
            const key = `${a.kind} ${a.status}${a.error ? ` ${a.error}` : ""}`;
            acc[key] = (acc[key] ?? 0) + 1;
            return acc;
          }, {}),
        ).sort();
      console.log(`${signal} ${seconds} s:`, JSON.stringify(summary(answers)));

      // Nothing but success and 503 (with Retry-After), on both routes.
      const wrong = answers.filter((a) => !(a.status === 200 || (a.status === 503 && a.retryAfter)));
      expect(summary(wrong)).toEqual([]);
      // The outage was felt (the test tests something), and ended.
      expect(answers.filter((a) => a.status === 503).length).toBeGreaterThan(0);
      // /verify served a verdict without the store only within the revocation bound.
      const lateVerify = answers.filter(
        (a) =>
          a.kind === "verify" &&
          a.status === 200 &&
          a.sentAt > down + REVOCATION_CACHE_S * 1_000 + 500 &&
          a.at < restarting,
      );
      expect(lateVerify).toEqual([]);
      // Issue 9: the first refresh succeeds within 2 s of Redis answering again (ioredis
      // reconnects every 500 ms at most). Measured from this test's own PONG, the figure printed:
      // 266-778 ms over 12 outages with `yes > /dev/null` on 2 cores at load 3-15, so the
      // issue's own bound holds with room to spare.
      const firstBack = answers
        .filter((a) => a.kind === "refresh" && a.status === 200 && a.at >= up)
        .reduce((min, a) => Math.min(min, a.at), Number.POSITIVE_INFINITY);
      console.log(`${signal} ${seconds} s: first refresh ${firstBack - up} ms after Redis was back`);
      expect(firstBack - up).toBeLessThan(BACK_WITHIN_MS);
      // No grant lost: every client refreshes with the last token it got.
      for (const grant of grants) {
        const res = await refresh(pair[0] as RunningGateway, grant.client, grant.refreshToken);
        expect(`${res.status} ${res.body.error ?? ""}`.trim()).toBe("200");
        grant.refreshToken = res.body.refresh_token as string;
        grant.accessToken = res.body.access_token as string;
      }
      const ready = await fetch(`${pair[1]?.url}/readyz`);
      expect(ready.status).toBe(200);
    },
    60_000,
  );

  it("while Redis is down: /readyz says why, pages, the AS endpoints and an MCP route answer 503 in their shapes", async () => {
    if (!redis) throw new Error("redis-server is required");
    const gw = pair[0] as RunningGateway;
    const grant = grants[0] as Grant;
    await addResourceServers(gw);
    // A login form as a browser has it open when the store goes away.
    const browser = new Browser();
    let loginPage = await browser.get(
      authorizeUrl(gw.url, { client_id: grant.client.client_id, code_challenge: pkcePair().challenge }),
    );
    if (loginPage.status === 302)
      loginPage = await browser.get(new URL(loginPage.headers.get("location") ?? "", gw.url).toString());
    const loginHtml = await loginPage.text();
    await redis.kill("SIGKILL");
    try {
      const ready = await fetch(`${gw.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.headers.get("retry-after")).toBeTruthy();
      const body = (await ready.json()) as Record<string, string>;
      expect(body).toMatchObject({ status: "unavailable", store: "redis" });
      expect(body.reason).toMatch(/^the Redis store cannot answer: /);

      const token = await refresh(gw, grant.client, grant.refreshToken);
      expect(`${token.status} ${token.body.error}`).toBe("503 temporarily_unavailable");

      const authorize = authorizeUrl(gw.url, {
        client_id: grant.client.client_id,
        code_challenge: pkcePair().challenge,
      });
      const page = await fetch(authorize);
      expect(page.status).toBe(503);
      expect(page.headers.get("content-type")).toMatch(/^text\/html/);
      expect(page.headers.get("retry-after")).toBeTruthy();

      // The other authorization server endpoints: OAuth JSON, never server_error / 500.
      // Each client as it is registered (the grant's is public; introspection asks a resource
      // server's credentials), so what answers is the store's absence, not a client refusal,
      // whether or not the client is still cached in memory.
      const rs = `${RESOURCE_SERVERS.basic.id}:${RESOURCE_SERVERS.basic.secret}`;
      const form = { "content-type": "application/x-www-form-urlencoded" };
      const machine: Record<string, RequestInit> = {
        "/register": {
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ redirect_uris: ["http://127.0.0.1:9/cb"], client_name: "outage" }),
        },
        "/revoke": {
          headers: form,
          body: new URLSearchParams({
            token: grant.refreshToken,
            client_id: grant.client.client_id,
          }).toString(),
        },
        "/introspect": {
          headers: { ...form, authorization: `Basic ${Buffer.from(rs).toString("base64")}` },
          body: new URLSearchParams({ token: grant.accessToken }).toString(),
        },
        "/device_authorization": {
          headers: form,
          body: new URLSearchParams({ client_id: grant.client.client_id }).toString(),
        },
      };
      for (const [path, init] of Object.entries(machine)) {
        const res = await fetch(`${gw.url}${path}`, { method: "POST", ...init });
        const text = await res.text();
        expect(`${path} ${res.status} ${res.headers.get("content-type")}`, text).toMatch(
          new RegExp(`^${path} 503 application/json`),
        );
        expect(res.headers.get("retry-after"), path).toBeTruthy();
        expect((JSON.parse(text) as { error?: string }).error, path).toBe("temporarily_unavailable");
      }

      // The open login form, submitted: a page a person can read, not JSON.
      const login = await browser.postForm(`${gw.url}/login`, {
        request: formField(loginHtml, "request"),
        csrf: formField(loginHtml, "csrf"),
        ...LOGIN,
      });
      expect(login.status).toBe(503);
      expect(login.headers.get("content-type")).toMatch(/^text\/html/);
      expect(login.headers.get("retry-after")).toBeTruthy();
      expect(await login.text()).toMatch(/<h1>[^<]+<\/h1>/);

      // What needs no store is served from memory: discovery and the public keys.
      for (const path of [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-protected-resource/notes/mcp",
        "/jwks",
      ]) {
        const res = await fetch(`${gw.url}${path}`);
        expect(`${path} ${res.status}`).toBe(`${path} 200`);
        await res.arrayBuffer();
      }

      // Once the cached verdict is past its bound, the MCP route needs the store.
      await sleep(REVOCATION_CACHE_S * 1_000 + 100);
      const mcp = await fetch(`${gw.url}/notes/mcp`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${grant.accessToken}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
      });
      expect(mcp.status).toBe(503);
      expect(mcp.headers.get("retry-after")).toBeTruthy();
      expect(((await mcp.json()) as { error?: { code: number } }).error?.code).toBeTypeOf("number");
    } finally {
      await redis.start();
    }
    // And nothing was spent: the refused refresh's token still works.
    const after = await refresh(gw, grant.client, grant.refreshToken);
    expect(after.status).toBe(200);
    grant.refreshToken = after.body.refresh_token as string;
  });
});

/**
 * README, "When the store is down": a token whose verdict was read from the store within
 * `tokens.revocation_cache` is admitted from the cache (by /verify and by the MCP route, one
 * token check), and past that bound answered 503 with Retry-After, never 500. Deterministic:
 * each token's verdict is read once, by a request sent at `sentAt` and answered at `at`, so it
 * expires between `sentAt + bound` and `at + bound`; Redis dies right after.
 */
describe("a verdict cached before a Redis outage", () => {
  /** The default bound: room enough for the SIGKILL and the first request after it. */
  const BOUND_S = 5;
  let redis: TestRedis;
  let upstream: TestUpstream;
  let gw: RunningGateway;

  beforeAll(async () => {
    redis = (await startRedis()) as TestRedis;
    if (!redis) return;
    upstream = await startUpstream();
    const services = {
      services: { ...SERVICES.services, notes: { ...SERVICES.services.notes, url: upstream.url } },
    };
    gw = await startFullGateway(
      { ...services, ...SEALING, tokens: { revocation_cache: BOUND_S } },
      { redisUrl: redis.url },
    );
    await addLocalUser(gw);
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
    await upstream?.close();
    await redis?.stop();
  });

  it("is served until tokens.revocation_cache has passed since the store read it, then 503 + Retry-After", async () => {
    if (!redis) throw new Error("redis-server is required");
    const resource = { resource: `${gw.url}/notes/mcp` };
    const client = await registerClient(gw.url);
    const routes: Record<string, (token: string) => Promise<RawResponse>> = {
      "/verify": async (token) => {
        const res = await fetch(`${gw.url}/verify?service=notes`, {
          headers: { authorization: `Bearer ${token}` },
        });
        return { status: res.status, headers: Object.fromEntries(res.headers), text: await res.text() };
      },
      "/notes/mcp": (token) => postInitialize(`${gw.url}/notes/mcp`, { authorization: `Bearer ${token}` }),
    };
    // One token per route, its verdict read (and cached) by that route's first request.
    const primed: Record<string, { token: string; sentAt: number; at: number }> = {};
    for (const [route, send] of Object.entries(routes)) {
      const { access_token: token } = await obtainTokens(gw, client, resource);
      const sentAt = Date.now();
      const res = await send(token);
      expect(`${route} ${res.status}`).toBe(`${route} 200`);
      primed[route] = { token, sentAt, at: Date.now() };
    }
    const seenUpstream = upstream.requests.length;
    await redis.kill("SIGKILL");
    try {
      // Both routes at once, each against its own token's bound.
      await Promise.all(
        Object.entries(routes).map(async ([route, send]) => {
          const { token, sentAt, at } = primed[route] as { token: string; sentAt: number; at: number };
          const cachedUntil = sentAt + BOUND_S * 1_000;
          const expiredAfter = at + BOUND_S * 1_000;
          // At once: Redis is gone, the verdict is still within its bound.
          const first = await send(token);
          const answeredAt = Date.now();
          expect(answeredAt, `${route}: Redis was killed within the bound`).toBeLessThan(cachedUntil);
          expect(`${route} ${first.status}`).toBe(`${route} 200`);
          // Then until past the bound: 200 while certainly within it, 503 once certainly past it.
          const answers: string[] = [];
          for (;;) {
            const sent = Date.now();
            const res = await send(token);
            const done = Date.now();
            answers.push(`${res.status}`);
            expect(res.status, `${route}: ${res.text}`).not.toBe(500);
            if (done < cachedUntil) expect(`${route} ${res.status}`).toBe(`${route} 200`);
            if (sent > expiredAfter) {
              expect(`${route} ${res.status}`).toBe(`${route} 503`);
              expect(res.headers["retry-after"], route).toBeTruthy();
              if (route === "/notes/mcp") {
                // The MCP route's own shape: a JSON-RPC error.
                expect((JSON.parse(res.text) as { error?: { code?: number } }).error?.code).toBeTypeOf(
                  "number",
                );
              }
              break;
            }
            await sleep(100);
          }
          // Never a 200 after a 503: the bound is not stretched by a later read.
          expect(answers.join(" "), route).toMatch(/^(200 )*(503 ?)*$/);
        }),
      );
      // The MCP requests admitted from the cache reached the upstream; the refused ones did not.
      expect(upstream.requests.length).toBeGreaterThan(seenUpstream);
    } finally {
      await redis.start();
    }
  }, 60_000);
});

describe("an SQLite file locked by another process past the busy timeout", () => {
  let gw: RunningGateway;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "mcpgw-lock-"));
    gw = await startFullGateway({ ...SERVICES, ...SEALING }, { dataDir: dir });
    await addLocalUser(gw);
  });
  afterAll(async () => {
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers a refresh 503 temporarily_unavailable and spends nothing", async () => {
    const client = await registerClient(gw.url);
    const { refresh_token: token } = await obtainTokens(gw, client);
    const other = new Database(join(dir, "gateway.db"));
    other.exec("BEGIN IMMEDIATE");
    let locked: Awaited<ReturnType<typeof refresh>>;
    try {
      locked = await refresh(gw, client, token);
    } finally {
      other.exec("ROLLBACK");
      other.close();
    }
    expect(`${locked.status} ${locked.body.error}`).toBe("503 temporarily_unavailable");
    expect(locked.headers.get("retry-after")).toBeTruthy();
    // The same token works once the lock is gone: the refused refresh changed nothing.
    const after = await refresh(gw, client, token);
    expect(after.status).toBe(200);
  }, 30_000);
});
