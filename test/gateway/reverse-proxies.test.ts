/**
 * The shipped nginx (auth_request) and Caddy (forward_auth) examples, run as real binaries in
 * front of a real MCP server, with /verify deciding. Skipped when a binary is missing, failed
 * instead when CI=true. The gateway also knows a second service, `other`, with an upstream of
 * its own: a token for it must never open `echo` through the proxy, whatever the client adds.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Pool } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkBinary } from "../support/binaries.js";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { INITIALIZE, MCP_HEADERS, postInitialize, raw } from "../support/mcp-http.js";
import { type PassThrough, startPassThrough } from "../support/pass-through.js";
import {
  CADDY,
  NGINX,
  type ProxyValues,
  type RunningProxy,
  startCaddy,
  startNginx,
} from "../support/proxies.js";
import { freePort, startUpstream, type TestUpstream } from "../support/upstream.js";

const proxies = [
  { name: "nginx auth_request", binary: NGINX, start: startNginx },
  { name: "Caddy forward_auth", binary: CADDY, start: startCaddy },
];

/**
 * Each proxy twice: with the gateway trusting no peer, and as README advises for this
 * deployment, with `trust_proxy` naming the proxy's address (every peer here is 127.0.0.1), so
 * that the gateway believes the forwarding headers that reach it.
 */
const trustModes = [undefined, "127.0.0.1"] as const;

const cases = proxies.flatMap((proxy) => trustModes.map((trustProxy) => ({ ...proxy, trustProxy })));

for (const { name, binary, start, trustProxy } of cases) {
  const check = checkBinary(binary);
  describe.skipIf(!check.available)(`${name}${trustProxy ? `, trust_proxy ${trustProxy}` : ""}`, () => {
    let upstream: TestUpstream;
    let otherUpstream: TestUpstream;
    let gw: TestGateway;
    let proxy: RunningProxy;
    /** Where the shipped file's {{GATEWAY}} points: it records what the proxy sends the gateway. */
    let passThrough: PassThrough;
    let endpoint: string;

    beforeAll(async () => {
      upstream = await startUpstream();
      otherUpstream = await startUpstream();
      const port = await freePort();
      // The proxy is what clients reach, so it is the public URL. Host routing is on, so that a
      // forged host naming `other` would mean something to a gateway that listened to it.
      gw = await startGateway({
        public_url: `http://127.0.0.1:${port}`,
        base_domain: "mcp.test",
        services: { echo: { url: upstream.url }, other: { url: otherUpstream.url } },
        // Verdicts stay cached for the whole file, however slow the machine: which lane
        // answers a repeated /verify then depends on the order alone.
        tokens: { revocation_cache: 300 },
        ...(trustProxy ? { trust_proxy: trustProxy } : {}),
      });
      passThrough = await startPassThrough(gw.url);
      const values: ProxyValues = {
        PORT: port,
        GATEWAY: passThrough.url,
        SERVICE: "echo",
        UPSTREAM_ADDR: `127.0.0.1:${upstream.port}`,
        UPSTREAM_PATH: "/mcp",
      };
      proxy = await start(values);
      endpoint = `${proxy.url}/echo/mcp`;
    });

    afterAll(async () => {
      await proxy?.close();
      await passThrough?.close();
      await gw?.close();
      await upstream?.close();
      await otherUpstream?.close();
    });

    it("401 without a token, with the gateway's challenge, and the upstream untouched", async () => {
      const res = await postInitialize(endpoint);
      expect(res.status).toBe(401);
      expect(res.headers["www-authenticate"]).toBe(
        `Bearer resource_metadata="${proxy.url}/.well-known/oauth-protected-resource/echo/mcp"`,
      );
      expect(upstream.requests).toHaveLength(0);
    });

    it("a browser's GET: the same 401 and challenge; Caddy passes on the gateway's page, nginx shows its own", async () => {
      const res = await raw(endpoint, {
        headers: { accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8" },
      });
      expect(res.status).toBe(401);
      expect(res.headers["www-authenticate"]).toBe(
        `Bearer resource_metadata="${proxy.url}/.well-known/oauth-protected-resource/echo/mcp"`,
      );
      if (binary === CADDY) {
        expect(res.headers["content-type"]).toMatch(/^text\/html/);
        expect(res.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
        expect(res.text).toContain("This is an MCP endpoint");
        expect(res.text).toContain(`<code id="endpoint-url">${endpoint}</code>`);
      }
      expect(upstream.requests).toHaveLength(0);
    });

    it("discovery is served by the gateway through the proxy", async () => {
      const res = await raw(`${proxy.url}/.well-known/oauth-protected-resource/echo/mcp`);
      expect(res.status).toBe(200);
      expect(JSON.parse(res.text)).toMatchObject({
        resource: endpoint,
        authorization_servers: [proxy.url],
      });
    });

    it("401 for a token meant for another resource", async () => {
      const token = await gw.token("other");
      const res = await postInitialize(endpoint, { authorization: `Bearer ${token}` });
      expect(res.status).toBe(401);
      expect(res.headers["www-authenticate"]).toContain('error="invalid_token"');
    });

    it("200 with a token; identity headers arrive, spoofed ones and the token do not", async () => {
      const token = await gw.token("echo", { sub: "u-7", preferred_username: "alice", client_id: "cli-9" });
      const res = await postInitialize(endpoint, {
        authorization: `Bearer ${token}`,
        "x-user-id": "spoofed",
        "x-auth-role": "admin",
        cookie: "a=b",
      });
      expect(res.status).toBe(200);
      expect(res.headers["mcp-session-id"]).toBeTruthy();
      const seen = upstream.requests.at(-1)?.headers ?? {};
      expect(seen["x-user-id"]).toBe("u-7");
      expect(seen["x-user-name"]).toBe("alice");
      expect(seen["x-user-email"]).toBe("alice@example.com");
      expect(seen["x-auth-client-id"]).toBe("cli-9");
      expect(seen.authorization).toBeUndefined();
      expect(seen.cookie).toBeUndefined();
      if (binary === CADDY) expect(seen["x-auth-role"]).toBeUndefined();
    });

    /** Every header a client could write to make /verify think of another service. */
    const SPOOFS: Record<string, Record<string, string>> = {
      "X-Forwarded-Uri": { "x-forwarded-uri": "/other/mcp" },
      "X-Original-URI": { "x-original-uri": "/other/mcp" },
      "X-Forwarded-Host": { "x-forwarded-host": "other.mcp.test", "x-forwarded-uri": "/mcp" },
      "X-Forwarded-Prefix": { "x-forwarded-prefix": "/other" },
      Forwarded: { forwarded: 'host="other.mcp.test";proto=http' },
      "X-Original-Host": { "x-original-host": "other.mcp.test" },
    };
    const ALL_SPOOFS = Object.assign({}, ...Object.values(SPOOFS)) as Record<string, string>;

    /** One MCP initialize through the proxy on a raw path (undici sends it as written). */
    const sendRaw = async (path: string, headers: Record<string, string>) => {
      const pool = new Pool(proxy.url);
      try {
        const res = await pool.request({
          method: "POST",
          path,
          headers: { ...MCP_HEADERS, ...headers },
          body: JSON.stringify(INITIALIZE),
        });
        await res.body.dump();
        return res.statusCode;
      } finally {
        await pool.close();
      }
    };

    it("a token for another service stays refused whatever the client adds, and the upstream sees nothing", async () => {
      const token = await gw.token("other", { sub: "intruder" });
      const bearer = { authorization: `Bearer ${token}` };
      const seenBefore = upstream.requests.length;
      const forwardedBefore = passThrough.requests.length;
      const outcomes: Record<string, number> = {};
      for (const [name, headers] of Object.entries({ ...SPOOFS, all: ALL_SPOOFS })) {
        outcomes[name] = await sendRaw("/echo/mcp", { ...bearer, ...headers });
      }
      const headerAttempts = passThrough.requests.slice(forwardedBefore);
      // The Host the client writes is what both proxies forward as X-Forwarded-Host: with host
      // routing on and trust_proxy naming the proxy, it names `other` to a gateway that listened.
      outcomes.Host = await sendRaw("/echo/mcp", { ...bearer, host: "other.mcp.test" });
      // Paths that the proxy normalises to /echo/mcp while their first raw segment says `other`.
      for (const path of ["/other/../echo/mcp", "/other/%2e%2e/echo/mcp", "/other/%2E%2E/echo/mcp"]) {
        outcomes[path] = await sendRaw(path, { ...bearer, ...ALL_SPOOFS });
      }
      // Each header attempt meets the token's own refusal (wrong audience); a path trick may also
      // miss the protected route altogether (404), but is never routed to `echo`'s upstream.
      const expected = Object.fromEntries(
        Object.entries(outcomes).map(([name, status]) => [
          name,
          name.startsWith("/") && (status === 401 || status === 403 || status === 404) ? status : 401,
        ]),
      );
      expect(outcomes).toEqual(expected);
      expect(upstream.requests.length).toBe(seenBefore);

      // What the proxy itself sent /verify: no client-written forwarding header survives, so the
      // decision cannot rest on one even if the gateway read it (not only ?service= deciding).
      // (The path tricks above are left out: Caddy names their raw path in X-Forwarded-Uri itself.)
      const verifies = headerAttempts.filter((r) => r.url.startsWith("/verify"));
      expect(verifies).toHaveLength(Object.keys(SPOOFS).length + 1);
      for (const { url, headers } of verifies) {
        expect(url).toBe("/verify?service=echo");
        const names = Object.keys(headers);
        expect(names.filter((h) => /^x-original-|^forwarded$|^x-forwarded-prefix$/.test(h))).toEqual([]);
        for (const [header, sent] of Object.entries(ALL_SPOOFS)) {
          if (headers[header] !== undefined) expect(headers[header], header).not.toBe(sent);
        }
        for (const value of Object.values(headers)) expect(String(value)).not.toContain("other");
        expect(headers["x-forwarded-host"]).toBe(new URL(proxy.url).host);
        // nginx passes none of the client's headers: only those its file sets (and Host, Connection).
        if (binary === NGINX)
          expect(names.sort()).toEqual([
            "authorization",
            "connection",
            "host",
            "x-forwarded-host",
            "x-forwarded-method",
            "x-forwarded-proto",
          ]);
      }
    });

    it("the honest request is 200 with its own identity, spoofing headers or not", async () => {
      const token = await gw.token("echo", { sub: "honest" });
      const verifyLane = gw.shortcuts.lanes.find((lane) => lane.name === "verify");
      const takenBefore = verifyLane?.taken;
      for (const headers of [{}, ALL_SPOOFS]) {
        const res = await postInitialize(endpoint, { authorization: `Bearer ${token}`, ...headers });
        expect(res.status).toBe(200);
        expect(upstream.requests.at(-1)?.headers["x-user-id"]).toBe("honest");
      }
      // The proxy's first /verify of the token took fastify's route; the second, its verdict
      // cached, the shortcut (what mcpgw_shortcut_requests_total{shortcut="verify"} counts).
      expect(verifyLane?.taken).toBe((takenBefore ?? Number.NaN) + 1);
    });

    it("the MCP SDK client calls a tool through the proxy", async () => {
      const token = await gw.token("echo", { sub: "u-8" });
      const client = new Client({ name: "proxy-test", version: "1.0.0" });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(endpoint), {
          requestInit: { headers: { authorization: `Bearer ${token}` } },
        }),
      );
      try {
        const result = (await client.callTool({ name: "whoami", arguments: {} })) as {
          content: Array<{ text: string }>;
        };
        expect(JSON.parse(result.content[0]?.text ?? "{}")["x-user-id"]).toBe("u-8");
      } finally {
        await client.close();
      }
    });
  });
}
