/**
 * /verify's two lanes answer alike. Each check sends the same request twice with a token seen
 * for the first time: the first takes fastify's route (and caches the token's verdict), the
 * second is offered to the shortcut ahead of fastify (src/gateway/forward-auth.ts), which
 * answers it when the route's decision would be a cached admission and declines anything
 * else. Compared, request by request: status, the headers a proxy copies or reads (identity,
 * WWW-Authenticate, Cache-Control), the access line byte for byte (but its time, request id
 * and duration), the audit events, and the request metrics; `shortcuts.taken` says which
 * lane answered. The whole gateway (buildGateway) logging at info, over real sockets.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { type RawResponse, raw } from "../support/mcp-http.js";
import { type MintClaims, mintAccessToken } from "../support/mint.js";

const ORIGIN = "https://app.example";
const lines: string[] = [];
let gw: RunningGateway;
let verify: string;

beforeAll(async () => {
  gw = await startFullGateway(
    {
      log_level: "info",
      base_domain: "mcp.test",
      trust_proxy: "127.0.0.1",
      gateway: { allowed_origins: [ORIGIN] },
      services: {
        echo: { url: "http://127.0.0.1:9/mcp" },
        team: { url: "http://127.0.0.1:9/mcp", allowed_users: ["bob"] },
      },
    },
    { logLines: lines },
  );
  verify = `${gw.url}/verify`;
});
afterAll(async () => gw?.close({ wipe: true }));

let tokens = 0;
/** A token never presented before, so its first request cannot be answered from a cache. */
function freshToken(service: string, claims: Partial<MintClaims> = {}): Promise<string> {
  tokens++;
  return mintAccessToken(gw.keys, {
    iss: gw.config.public_url,
    aud: `${gw.config.public_url}/${service}/mcp`,
    sub: `user-${tokens}`,
    preferred_username: `user${tokens}`,
    client_id: `client-${tokens}`,
    jti: `verify-shortcut-${tokens}`,
    ...claims,
  });
}

/** The access line without what differs between any two requests: time, id, duration. */
const fixedPart = (line: string) =>
  line
    .replace(/"time":"[^"]*"/, '"time":"T"')
    .replace(/"reqId":"req-[0-9a-z]+"/, '"reqId":"ID"')
    .replace(/"responseTime":[0-9.e+-]+/, '"responseTime":0');

interface Parsed {
  msg?: string;
  component?: string;
  req?: { path?: string };
}
const parse = (line: string) => JSON.parse(line) as Parsed;

async function verifyCounts(): Promise<string> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith("mcpgw_http_requests_total{") && l.includes('route="/verify"'))
    .sort()
    .join("\n");
}

/** `after` minus `before`, series by series: what one request added to the /verify counts. */
function added(before: string, after: string): Record<string, number> {
  const values = (text: string) =>
    new Map(
      text
        .split("\n")
        .filter(Boolean)
        .map((l) => [l.slice(0, l.lastIndexOf(" ")), Number(l.slice(l.lastIndexOf(" ") + 1))] as const),
    );
  const was = values(before);
  const out: Record<string, number> = {};
  for (const [series, n] of values(after))
    if (n !== (was.get(series) ?? 0)) out[series] = n - (was.get(series) ?? 0);
  return out;
}

interface Lane {
  lane: "shortcut" | "fastify";
  status: number;
  headers: Record<string, string | undefined>;
  accessLine: string;
  audit: string[];
  metrics: Record<string, number>;
}

/** One request, and everything it left behind. */
async function once(url: string, init: { method?: string; headers: Record<string, string> }): Promise<Lane> {
  const taken = gw.shortcuts.taken;
  const mark = lines.length;
  const counts = await verifyCounts();
  const res: RawResponse = await raw(url, init);
  // The route writes its line and counts the request once the response has finished, which
  // may be just after the client has read it.
  await expect
    .poll(() => lines.slice(mark).some((l) => parse(l).req?.path === "/verify"), { timeout: 5000 })
    .toBe(true);
  let metrics: Record<string, number> = {};
  await expect
    .poll(
      async () => {
        metrics = added(counts, await verifyCounts());
        return Object.values(metrics).reduce((a, b) => a + b, 0);
      },
      { timeout: 5000 },
    )
    .toBe(1);
  const mine = lines.slice(mark);
  const access = mine.filter((l) => parse(l).msg === "request completed" && parse(l).req?.path === "/verify");
  expect(access).toHaveLength(1);
  const header = (name: string) => {
    const value = res.headers[name];
    return Array.isArray(value) ? value.join(", ") : value;
  };
  return {
    lane: gw.shortcuts.taken > taken ? "shortcut" : "fastify",
    status: res.status,
    headers: {
      "x-user-id": header("x-user-id"),
      "x-user-name": header("x-user-name"),
      "x-user-email": header("x-user-email"),
      "x-auth-client-id": header("x-auth-client-id"),
      "www-authenticate": header("www-authenticate"),
      "cache-control": header("cache-control"),
      "content-type": header("content-type"),
    },
    accessLine: fixedPart(access[0] as string),
    audit: mine.filter((l) => parse(l).component === "audit").map((l) => l.replace(/"time":"[^"]*"/, "")),
    metrics,
  };
}

/** The same request twice; the lanes' answers and traces with the lane names apart. */
async function bothLanes(url: string, init: { method?: string; headers: Record<string, string> }) {
  const first = await once(url, init);
  const second = await once(url, init);
  const { lane: firstLane, ...firstRest } = first;
  const { lane: secondLane, ...secondRest } = second;
  expect(secondRest).toEqual(firstRest);
  return { lanes: [firstLane, secondLane], answer: firstRest };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("/verify: the shortcut answers as the route does", () => {
  it("admitted, service named in the URL: GET, bodiless POST and HEAD", async () => {
    for (const method of ["GET", "POST", "HEAD"]) {
      const token = await freshToken("echo", { email: method === "GET" ? undefined : "a@example.com" });
      const { lanes, answer } = await bothLanes(`${verify}?service=echo`, { method, headers: bearer(token) });
      expect({ method, lanes }).toEqual({ method, lanes: ["fastify", "shortcut"] });
      expect(answer.status).toBe(200);
      expect(answer.headers["x-user-id"]).toBe(`user-${tokens}`);
      expect(answer.headers["x-auth-client-id"]).toBe(`client-${tokens}`);
      expect(answer.headers["x-user-email"]).toBe(method === "GET" ? "" : "a@example.com");
      expect(answer.headers["cache-control"]).toBe("no-store");
      expect(answer.audit).toEqual([]);
      expect(answer.metrics).toEqual({
        [`mcpgw_http_requests_total{route="/verify",method="${method}",status="200"}`]: 1,
      });
    }
  });

  it("admitted, service from a trusted proxy's forwarded URI or host, or with an allowed Origin", async () => {
    const cases: Array<[string, Partial<MintClaims>, Record<string, string>]> = [
      ["echo", {}, { "x-forwarded-uri": "/echo/mcp?x=1", "x-forwarded-method": "POST" }],
      [
        "echo",
        { aud: "http://echo.mcp.test/mcp" },
        { "x-forwarded-host": "echo.mcp.test", "x-forwarded-uri": "/mcp" },
      ],
      ["echo", {}, { "x-forwarded-uri": "/echo/mcp", origin: ORIGIN }],
    ];
    for (const [service, claims, headers] of cases) {
      const token = await freshToken(service, claims);
      const { lanes, answer } = await bothLanes(verify, { headers: { ...headers, ...bearer(token) } });
      expect({ headers, lanes, status: answer.status }).toEqual({
        headers,
        lanes: ["fastify", "shortcut"],
        status: 200,
      });
    }
  });

  it("refused or unusual: the route answers both times, the same way, with the same audit", async () => {
    const echoToken = await freshToken("echo");
    const mallory = await freshToken("team", { preferred_username: "mallory" });
    // [url, headers, status, audit events: a presented token refused for a service it reached]
    const cases: Array<[string, Record<string, string>, number, number]> = [
      // Another service's token, named in the URL or forwarded.
      [`${verify}?service=team`, bearer(echoToken), 401, 1],
      [verify, { "x-forwarded-uri": "/team/mcp", ...bearer(echoToken) }, 401, 1],
      // A user outside the service's policy.
      [`${verify}?service=team`, bearer(mallory), 403, 1],
      // A foreign Origin, and one a forwarded host would make look like the gateway's own.
      [`${verify}?service=echo`, { origin: "https://evil.example", ...bearer(echoToken) }, 403, 0],
      [
        `${verify}?service=echo`,
        { origin: "http://rebound.example", "x-forwarded-host": "rebound.example", ...bearer(echoToken) },
        403,
        0,
      ],
      // No token; not a Bearer token.
      [`${verify}?service=echo`, {}, 401, 0],
      [`${verify}?service=echo`, { authorization: "Basic dTpw" }, 401, 1],
      // Dot segments, encoded dots, two URIs, host against URI, ?service= twice: no service.
      [verify, { "x-forwarded-uri": "/echo/../team/mcp", ...bearer(echoToken) }, 401, 0],
      [verify, { "x-forwarded-uri": "/echo/%2e%2e/team/mcp", ...bearer(echoToken) }, 401, 0],
      [
        verify,
        { "x-forwarded-uri": "/echo/mcp", "x-original-uri": "/team/mcp", ...bearer(echoToken) },
        401,
        0,
      ],
      [
        verify,
        { "x-forwarded-host": "team.mcp.test", "x-forwarded-uri": "/echo/mcp", ...bearer(echoToken) },
        401,
        0,
      ],
      [`${verify}?service=echo&service=team`, bearer(echoToken), 401, 0],
    ];
    // The echo token's verdict is cached from here on: the shortcut could answer if it erred.
    expect((await raw(`${verify}?service=echo`, { headers: bearer(echoToken) })).status).toBe(200);
    for (const [url, headers, status, audited] of cases) {
      const { lanes, answer } = await bothLanes(url, { headers });
      expect({ url, headers, lanes, status: answer.status, audit: answer.audit.length }).toEqual({
        url,
        headers,
        lanes: ["fastify", "fastify"],
        status,
        audit: audited,
      });
      expect(answer.headers["x-user-id"]).toBeUndefined();
      if (status === 401) expect(answer.headers["www-authenticate"]).toMatch(/^Bearer /);
    }
  });

  it("a preflight: 200 without identity, from the route both times", async () => {
    const token = await freshToken("echo");
    const headers = {
      "x-forwarded-method": "OPTIONS",
      origin: ORIGIN,
      "access-control-request-method": "POST",
      ...bearer(token),
    };
    await raw(`${verify}?service=echo`, { headers: bearer(token) });
    const { lanes, answer } = await bothLanes(`${verify}?service=echo`, { headers });
    expect(lanes).toEqual(["fastify", "fastify"]);
    expect(answer.status).toBe(200);
    expect(answer.headers["x-user-id"]).toBeUndefined();
  });
});
