/**
 * Several instances behind a real load balancer without stickiness (nginx round-robin with
 * deploy/nginx/gateway-cluster.conf, three instances; Caddy `lb_policy round_robin` with
 * deploy/caddy/Caddyfile.cluster, two), one real redis-server, the gateway CLI as processes.
 * Consecutive requests land on different instances, and every flow works: login and consent
 * (their state in the store), token, refresh, revocation, a proxied MCP session, bridged stdio
 * sessions (one child per session, and shared: one child per instance) with the SDK v2 client
 * and with mcp-remote, each for many calls. The internal channel is for instances only.
 */
import { Redis } from "ioredis";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUILT } from "../e2e/serve-process.js";
import { checkBinary } from "../support/binaries.js";
import { INITIALIZE, MCP_HEADERS } from "../support/mcp-http.js";
import {
  authorizeUrl,
  Browser,
  followAuthorization,
  formPost,
  pkcePair,
  REDIRECT_URI,
  registerClient,
  tokenRequest,
} from "../support/oauth-client.js";
import { CADDY, NGINX } from "../support/proxies.js";
import { redisAvailable } from "../support/redis.js";
import { BrowserProvider, connectMcpRemote, connectV2, toolJson } from "./clients.js";
import { CLUSTER_SECRET, LOGIN, startCluster, type TestCluster } from "./cluster.js";

export const VARIANTS = {
  nginx: { proxy: "nginx" as const, binary: NGINX, instances: 3 },
  caddy: { proxy: "caddy" as const, binary: CADDY, instances: 2 },
};
const CAN_RUN = BUILT && redisAvailable();
const SLOW = 120_000;

/** The owner entry of a bridged session (STORAGE.md `cluster_sessions`). */
async function ownerOf(cluster: TestCluster, service: string, sid: string): Promise<string | undefined> {
  const redis = new Redis(cluster.redis.url);
  try {
    const raw = await redis.get(`mcpgw:cluster_sessions:${service}:${sid}`);
    return raw ? (JSON.parse(raw) as { owner: string }).owner : undefined;
  } finally {
    redis.disconnect();
  }
}

/** The whole suite for one load balancer (one test file each, to keep each file short). */
export function scaleOutSuite(variant: (typeof VARIANTS)[keyof typeof VARIANTS]): void {
  const available = checkBinary(variant.binary).available && CAN_RUN;
  describe.skipIf(!available && process.env.CI !== "true")(
    `${variant.instances} instances behind ${variant.proxy} round-robin, one Redis`,
    () => {
      let cluster: TestCluster;
      const provider = () => new BrowserProvider(cluster.base);
      let shared: BrowserProvider;

      beforeAll(async () => {
        cluster = await startCluster({ instances: variant.instances, proxy: variant.proxy });
        shared = provider();
      }, SLOW);
      afterAll(async () => {
        await cluster?.stop();
      }, SLOW);

      /** How many of the instances answered requests to `path` (from their request logs). */
      const instancesThatServed = (path: string) =>
        cluster.instances.filter((_, i) => cluster.requestsSeen(i, path) > 0).length;

      it(
        "login and consent, token, refresh and revocation work while each request lands on another instance",
        async () => {
          const client = await registerClient(cluster.base);
          const { verifier, challenge } = pkcePair();
          const browser = new Browser();
          const back = await followAuthorization(
            cluster.base,
            browser,
            authorizeUrl(cluster.base, {
              client_id: client.client_id,
              code_challenge: challenge,
              resource: [`${cluster.base}/echo/mcp`],
            }),
            LOGIN,
          );
          // The login session and the consent are in the store, where every instance finds them.
          const redis = new Redis(cluster.redis.url);
          try {
            expect((await redis.keys("mcpgw:sessions:*")).length).toBeGreaterThan(0);
            expect((await redis.keys("mcpgw:consents:*")).length).toBeGreaterThan(0);
          } finally {
            redis.disconnect();
          }
          const code = back.searchParams.get("code") as string;
          const tokens = await tokenRequest(cluster.base, {
            grant_type: "authorization_code",
            client_id: client.client_id,
            code,
            code_verifier: verifier,
            redirect_uri: REDIRECT_URI,
          });
          expect(tokens.status).toBe(200);
          let refresh = tokens.body.refresh_token as string;
          for (let i = 0; i < variant.instances * 2; i++) {
            const next = await tokenRequest(cluster.base, {
              grant_type: "refresh_token",
              client_id: client.client_id,
              refresh_token: refresh,
            });
            expect(next.status).toBe(200);
            refresh = next.body.refresh_token as string;
          }
          expect(
            (await formPost(`${cluster.base}/revoke`, { token: refresh, client_id: client.client_id }))
              .status,
          ).toBe(200);
          const after = await tokenRequest(cluster.base, {
            grant_type: "refresh_token",
            client_id: client.client_id,
            refresh_token: refresh,
          });
          expect(after.body.error).toBe("invalid_grant");
          // Every instance took part.
          expect(instancesThatServed("/token")).toBe(variant.instances);
          expect(instancesThatServed("/authorize") + instancesThatServed("/login")).toBeGreaterThan(1);
        },
        SLOW,
      );

      it(
        "the SDK v2 client keeps one bridged session (one child) for many calls landing on every instance",
        async () => {
          const { client, transport, sessionId } = await connectV2(`${cluster.base}/counter/mcp`, shared);
          const owner = await ownerOf(cluster, "counter", sessionId);
          expect(cluster.instances.map((i) => i.advertiseUrl)).toContain(owner);
          const pids = new Set<number>();
          const counts: number[] = [];
          for (let i = 0; i < 12; i++) {
            const seen = toolJson<{ calls: number; pid: number }>(
              await client.callTool({ name: "count", arguments: {} }),
            );
            pids.add(seen.pid);
            counts.push(seen.calls);
          }
          expect({ pids: pids.size, counts }).toEqual({
            pids: 1,
            counts: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
          });
          expect(instancesThatServed("/counter/mcp")).toBe(variant.instances);
          // DELETE reaches the owner too: the session and its entry are gone.
          await transport.terminateSession();
          await client.close();
          expect(await ownerOf(cluster, "counter", sessionId)).toBeUndefined();
        },
        SLOW,
      );

      it(
        "shared mode: one child per instance, each session with the child of the instance that opened it",
        async () => {
          const sessions = [];
          const pooled = provider();
          for (let i = 0; i < variant.instances * 2; i++) {
            // A connect is a fixed number of requests: one more every other time varies where
            // the next initialize lands, whatever the number of instances.
            if (i % 2 === 1) await (await fetch(`${cluster.base}/healthz`)).text();
            sessions.push(await connectV2(`${cluster.base}/pooled/mcp`, pooled));
          }
          const pidOf = new Map<string, Set<number>>();
          for (const s of sessions) {
            const owner = (await ownerOf(cluster, "pooled", s.sessionId)) as string;
            for (let call = 0; call < 3; call++) {
              const where = toolJson<{ instance: string; pid: number }>(
                await s.client.callTool({ name: "where", arguments: {} }),
              );
              const instance = cluster.instances.find((i) => i.name === where.instance);
              expect(instance?.advertiseUrl).toBe(owner);
              pidOf.set(where.instance, (pidOf.get(where.instance) ?? new Set()).add(where.pid));
            }
          }
          for (const pids of pidOf.values()) expect(pids.size).toBe(1);
          expect(pidOf.size).toBeGreaterThan(1);
          for (const s of sessions) {
            await s.transport.terminateSession();
            await s.client.close();
          }
        },
        SLOW,
      );

      it(
        "a proxied MCP session (remote upstream) works from every instance; client-sent cluster headers never cross",
        async () => {
          const echo = provider();
          const { client, transport } = await connectV2(`${cluster.base}/echo/mcp`, echo);
          for (let i = 0; i < variant.instances * 2; i++) {
            const seen = toolJson<Record<string, string>>(
              await client.callTool({ name: "whoami", arguments: {} }),
            );
            expect(seen["x-user-name"]).toBe(LOGIN.username);
          }
          await transport.terminateSession();
          await client.close();
          expect(instancesThatServed("/echo/mcp")).toBe(variant.instances);

          // A client that writes the cluster's headers itself: removed before the upstream.
          const token = echo.saved?.access_token as string;
          const init = await request(`${cluster.base}/echo/mcp`, {
            method: "POST",
            headers: {
              ...MCP_HEADERS,
              authorization: `Bearer ${token}`,
              "x-mcp-gateway-cluster-from": "http://203.0.113.9:1",
              "X-Mcp-Gateway-Relayed": "1",
            },
            body: JSON.stringify(INITIALIZE),
          });
          await init.body.dump();
          expect(init.statusCode).toBe(200);
          const arrived = cluster.upstream.requests.at(-1)?.headers ?? {};
          expect(Object.keys(arrived).filter((h) => h.startsWith("x-mcp-gateway"))).toEqual([]);
        },
        SLOW,
      );

      it(
        "mcp-remote logs in and keeps a long bridged session across the instances",
        async () => {
          const { client, log } = await connectMcpRemote(
            cluster.base,
            `${cluster.base}/counter/mcp`,
            cluster.dir,
          );
          try {
            const pids = new Set<number>();
            for (let i = 1; i <= 20; i++) {
              const seen = toolJson<{ calls: number; pid: number }>(
                await client.callTool({ name: "count", arguments: {} }),
              );
              expect(seen.calls).toBe(i);
              pids.add(seen.pid);
            }
            expect(pids.size).toBe(1);
          } catch (e) {
            throw new Error(`${(e as Error).message}\nmcp-remote said:\n${log()}`);
          } finally {
            await client.close();
          }
        },
        SLOW,
      );

      it(
        "the internal channel: refused without an instance's signature; the forwarded form is refused at the public URL",
        async () => {
          const { client, transport, sessionId } = await connectV2(`${cluster.base}/counter/mcp`, shared);
          const owner = (await ownerOf(cluster, "counter", sessionId)) as string;
          const call = {
            jsonrpc: "2.0",
            id: 7,
            method: "tools/call",
            params: { name: "count", arguments: {} },
          };
          const forged = {
            ...MCP_HEADERS,
            "mcp-session-id": sessionId,
            "mcp-protocol-version": "2025-06-18",
            "x-user-id": "alice",
            "x-user-name": LOGIN.username,
            "x-mcp-gateway-cluster-from": cluster.instances[0]?.advertiseUrl as string,
          };
          const tries = [
            // Straight to the owner's internal listener: nothing, a wrong secret, the secret itself
            // (as a bearer, as Basic): only a signature made with it opens the listener.
            { url: `${owner}/counter/mcp`, authorization: undefined },
            { url: `${owner}/counter/mcp`, authorization: `Bearer ${CLUSTER_SECRET}` },
            { url: `${owner}/counter/mcp`, authorization: "Bearer not-the-cluster-secret-0123456789abcdef" },
            {
              url: `${owner}/counter/mcp`,
              authorization: `Basic ${Buffer.from(`x:${CLUSTER_SECRET}`).toString("base64")}`,
            },
            // The same form at the public URL: the cluster secret is not an access token.
            { url: `${cluster.base}/counter/mcp`, authorization: `Bearer ${CLUSTER_SECRET}` },
            { url: `${cluster.base}/counter/mcp`, authorization: undefined },
          ];
          for (const attempt of tries) {
            const headers: Record<string, string> = { ...forged };
            if (attempt.authorization) headers.authorization = attempt.authorization;
            const res = await request(attempt.url, { method: "POST", headers, body: JSON.stringify(call) });
            const text = await res.body.text();
            expect({ url: attempt.url, status: res.statusCode, text }).toMatchObject({ status: 401 });
          }
          // None of them reached the child: the session's next call is its first.
          const seen = toolJson<{ calls: number }>(await client.callTool({ name: "count", arguments: {} }));
          expect(seen.calls).toBe(1);
          await transport.terminateSession();
          await client.close();
        },
        SLOW,
      );
    },
  );
}
