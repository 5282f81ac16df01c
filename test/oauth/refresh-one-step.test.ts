/**
 * A refresh on Redis is one store step (REFRESH_STEP_LUA: the reads, the checks a plain refresh
 * passes, the rotation); anything else is declined with nothing changed and decided in two steps
 * as before. Every branch runs through the real gateway on SQLite (always two steps, the
 * reference) and on a real redis-server, with the same answers; on Redis, MONITOR shows which
 * scripts ran, so a branch cannot pass by taking the other path.
 */
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashSecret } from "../../src/crypto/secrets.js";
import { LocalUsers } from "../../src/idp/local.js";
import { JWT_BEARER_ASSERTION } from "../../src/oauth/client-assertion.js";
import type { Grant } from "../../src/oauth/grant-store.js";
import {
  CONFIRM_ROTATION_LUA,
  CONFIRM_ROTATIONS_LUA,
  REFRESH_STEP_LUA,
  ROTATE_REFRESH_LUA,
} from "../../src/store/redis-rotation.js";
import { FAMILY_NS, familyKey } from "../../src/store/refresh-rotation.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import {
  REDIRECT_URI,
  type RegisteredClient,
  registerClient,
  tokenRequest,
} from "../support/oauth-client.js";
import { startRedis, type TestRedis } from "../support/redis.js";
import { roomInBrakeWindow } from "../support/wait.js";
import {
  addLocalUser,
  LOGIN,
  obtainCode,
  obtainTokens,
  refresh,
  registerKeyClient,
  SERVICES,
  STORES,
} from "./helpers.js";
import { SEALING } from "./rotation-scenarios.js";

const sha1 = (text: string) => createHash("sha1").update(text).digest("hex");
const SCRIPTS = {
  step: sha1(REFRESH_STEP_LUA),
  rotate: sha1(ROTATE_REFRESH_LUA),
  confirm: [sha1(CONFIRM_ROTATION_LUA), sha1(CONFIRM_ROTATIONS_LUA)],
};
/** Confirmations sent on their own (a 2 ms batch) when no rotation came to carry them. */
const CONFIRM_ONLY = "cjson.decode(raw)['for']";
const STEP_ONLY = "local function holds(asked, held)";
const ROTATE_ONLY = "local function alongside()";
for (const [text, line] of [
  [REFRESH_STEP_LUA, STEP_ONLY],
  [ROTATE_REFRESH_LUA, ROTATE_ONLY],
] as const) {
  if (
    !text.includes(line) ||
    (text === REFRESH_STEP_LUA ? ROTATE_REFRESH_LUA : REFRESH_STEP_LUA).includes(line)
  )
    throw new Error(`"${line}" no longer tells the refresh scripts apart`);
}
const REFRESH_TTL = 3600;

type Answer = { status: number; body: Record<string, unknown> };
const outcome = (r: Answer) => `${r.status} ${r.body.error ?? ""}`.trim();
const sidOf = (token: string) => token.slice(0, token.indexOf("."));

/** A command the gateway sent while `monitored` watched: its name, which script (if one), from Lua or not. */
interface Seen {
  name: string;
  script?: "step" | "rotate" | "confirm" | "other";
  lua: boolean;
  key: string;
}

/**
 * Runs `request` with MONITOR on: every command the gateway sent meanwhile. A marker sent after
 * the answer shows every command of the request has been streamed.
 */
async function monitored<T>(
  url: string,
  request: () => Promise<T>,
): Promise<{ answer: T; commands: Seen[] }> {
  const monitorClient = new Redis(url);
  // Connected (its ready check sent) before MONITOR starts: only the gateway's commands are seen.
  const probe = new Redis(url);
  await probe.ping();
  const marker = `refresh-one-step-${Date.now()}-${Math.random()}`;
  const commands: Seen[] = [];
  let seen: () => void = () => {};
  const markerSeen = new Promise<void>((resolve) => {
    seen = resolve;
  });
  const monitor = await monitorClient.monitor();
  monitor.on("monitor", (_time: string, args: string[], source: string) => {
    const [rawName, first] = args.map(String);
    const name = (rawName ?? "").toLowerCase();
    if (name === "echo" && first === marker) return seen();
    if (name === "monitor" || name === "echo") return;
    // EVALSHA, or EVAL with the script's text the first time (ioredis on NOSCRIPT; MONITOR
    // shows that text escaped, so it is told by a line only that script has).
    let script: Seen["script"];
    if (name === "evalsha" || name === "eval") {
      const text = first ?? "";
      if (text === SCRIPTS.step || text.includes(STEP_ONLY)) script = "step";
      else if (text === SCRIPTS.rotate || text.includes(ROTATE_ONLY)) script = "rotate";
      else if (SCRIPTS.confirm.includes(text) || text.includes(CONFIRM_ONLY)) script = "confirm";
      else script = "other";
    }
    commands.push({ name, ...(script ? { script } : {}), lua: source.includes("lua"), key: first ?? "" });
  });
  try {
    const answer = await request();
    await probe.echo(marker);
    await markerSeen;
    return { answer, commands };
  } finally {
    probe.disconnect();
    monitor.disconnect();
    monitorClient.disconnect();
  }
}

describe.each(STORES)("a refresh on $name, branch by branch", ({ redis: useRedis }) => {
  let redis: TestRedis | undefined;
  let gw: RunningGateway;
  let client: RegisteredClient;

  beforeAll(async () => {
    if (useRedis) {
      redis = await startRedis();
      if (!redis) return;
    }
    gw = await startFullGateway(
      { ...SERVICES, ...SEALING, tokens: { refresh_ttl: REFRESH_TTL } },
      { redisUrl: redis?.url },
    );
    await addLocalUser(gw);
    client = await registerClient(gw.url);
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
    await redis?.stop();
  });
  const skipWithoutRedis = (ctx: { skip: () => void }) => {
    if (useRedis && !redis) ctx.skip();
  };

  /** Runs `request` and, on Redis, counts the refresh scripts it ran. */
  async function scriptsOf<T>(
    request: () => Promise<T>,
  ): Promise<{ answer: T; step?: number; rotate?: number }> {
    if (!redis) return { answer: await request() };
    const { answer, commands } = await monitored(redis.url, request);
    const count = (name: string) => commands.filter((c) => c.script === name).length;
    return { answer, step: count("step"), rotate: count("rotate") };
  }

  /** On Redis: the scripts a request ran were exactly these. */
  function expectScripts(
    run: { step?: number; rotate?: number },
    expected: { step: number; rotate: number },
  ) {
    if (redis) expect({ step: run.step, rotate: run.rotate }).toEqual(expected);
  }

  const grantOf = async (token: string) => (await gw.as.grants.getGrant(sidOf(token))) as Grant;
  /** Rewrites the stored grant of `token` (what time, or an older gateway, would have left). */
  async function storeGrant(token: string, change: Partial<Grant>): Promise<void> {
    const grant = await grantOf(token);
    await gw.store.put("grants", grant.sid, { ...grant, ...change } as never, REFRESH_TTL);
  }
  const familyOf = (token: string) => gw.store.get(FAMILY_NS, familyKey(sidOf(token)));
  /** One command on the test's Redis, on a connection of its own. */
  async function onRedis<T>(command: (r: Redis) => Promise<T>): Promise<T> {
    const r = new Redis((redis as TestRedis).url);
    try {
      return await command(r);
    } finally {
      r.disconnect();
    }
  }
  const grantKey = (token: string) => `t${gw.port}:grants:${sidOf(token)}`;

  it("a plain refresh: one step on Redis; the successor works, the predecessor replays it", async (ctx) => {
    skipWithoutRedis(ctx);
    const { refresh_token: t0 } = await obtainTokens(gw, client, { scope: "notes:read notes:write" });
    if (redis) await onRedis((r) => r.pexpire(grantKey(t0), 60_000));
    const before = JSON.stringify(await grantOf(t0));
    const first = await scriptsOf(() => refresh(gw, client, t0));
    expect(outcome(first.answer)).toBe("200");
    expect(first.answer.body.scope).toBe("notes:read notes:write");
    expectScripts(first, { step: 1, rotate: 0 });
    if (redis) {
      // The grant's lifetime was renewed with its family (sliding), its JSON left as it was.
      expect(await onRedis((r) => r.pttl(grantKey(t0)))).toBeGreaterThan(REFRESH_TTL * 1000 - 60_000);
      expect(JSON.stringify(await grantOf(t0))).toBe(before);
    }
    const t1 = first.answer.body.refresh_token as string;
    // The predecessor inside the grace window: declined by the step, replayed by the rotation.
    const replay = await scriptsOf(() => refresh(gw, client, t0));
    expect(outcome(replay.answer)).toBe("200");
    expect(replay.answer.body.refresh_token).toBe(t1);
    expectScripts(replay, { step: 1, rotate: 1 });
    const second = await scriptsOf(() => refresh(gw, client, t1));
    expect(outcome(second.answer)).toBe("200");
    expectScripts(second, { step: 1, rotate: 0 });
    // Two rotations old: reuse, the grant ends.
    const old = await scriptsOf(() => refresh(gw, client, t0));
    expect(outcome(old.answer)).toBe("400 invalid_grant");
    expectScripts(old, { step: 1, rotate: 0 });
    expect(outcome(await refresh(gw, client, second.answer.body.refresh_token as string))).toBe(
      "400 invalid_grant",
    );
  });

  it("a narrower scope and a granted audience pass in one step; wider ones are refused and spend nothing", async (ctx) => {
    skipWithoutRedis(ctx);
    const notes = `${gw.url}/notes/mcp`;
    const files = `${gw.url}/files/mcp`;
    const { refresh_token: t0 } = await obtainTokens(gw, client, {
      scope: "notes:read notes:write",
      resource: notes,
    });
    const narrower = await scriptsOf(() => refresh(gw, client, t0, { scope: "notes:read", resource: notes }));
    expect(outcome(narrower.answer)).toBe("200");
    expect(narrower.answer.body.scope).toBe("notes:read");
    expectScripts(narrower, { step: 1, rotate: 0 });
    const t1 = narrower.answer.body.refresh_token as string;

    const wider = await scriptsOf(() => refresh(gw, client, t1, { scope: "notes:read files:read" }));
    expect(outcome(wider.answer)).toBe("400 invalid_scope");
    expectScripts(wider, { step: 1, rotate: 0 });
    const elsewhere = await scriptsOf(() => refresh(gw, client, t1, { resource: files }));
    expect(outcome(elsewhere.answer)).toBe("400 invalid_target");
    expectScripts(elsewhere, { step: 1, rotate: 0 });
    // Neither refusal spent the token: it is still the current one.
    const after = await refresh(gw, client, t1);
    expect(outcome(after)).toBe("200");
    expect(after.body.scope).toBe("notes:read notes:write");
  });

  it("another client's refresh token ends the grant", async (ctx) => {
    skipWithoutRedis(ctx);
    const { refresh_token: token } = await obtainTokens(gw, client);
    const thief = await registerClient(gw.url);
    const stolen = await scriptsOf(() => refresh(gw, thief, token));
    expect(outcome(stolen.answer)).toBe("400 invalid_grant");
    expect(String(stolen.answer.body.error_description)).toMatch(/another client/);
    expectScripts(stolen, { step: 1, rotate: 0 });
    expect(outcome(await refresh(gw, client, token))).toBe("400 invalid_grant");
    expect(await familyOf(token)).toBeUndefined();
  });

  it("a grant marked revoked (its deletion not done yet) refreshes no more", async (ctx) => {
    skipWithoutRedis(ctx);
    const { refresh_token: token } = await obtainTokens(gw, client);
    await gw.as.parts.revocations.revokeGrant(sidOf(token));
    const answer = await scriptsOf(() => refresh(gw, client, token));
    expect(outcome(answer.answer)).toBe("400 invalid_grant");
    expect(String(answer.answer.body.error_description)).toMatch(/revoked or has expired/);
    expectScripts(answer, { step: 1, rotate: 0 });
  });

  it("a liveness re-check due asks the provider: still there, the grant says so; gone, it ends", async (ctx) => {
    skipWithoutRedis(ctx);
    const long = Math.floor(Date.now() / 1000) - 10 * 24 * 3600;
    const { refresh_token: t0 } = await obtainTokens(gw, client);
    await storeGrant(t0, { auth_time: long, checked_at: long });
    const asked = await scriptsOf(() => refresh(gw, client, t0));
    expect(outcome(asked.answer)).toBe("200");
    expectScripts(asked, { step: 1, rotate: 1 });
    // The new verdict went into the grant with the rotation.
    expect((await grantOf(t0)).checked_at).toBeGreaterThan(long);

    const other = await registerClient(gw.url);
    const { refresh_token: mine } = await obtainTokens(gw, other);
    await storeGrant(mine, { auth_time: long, checked_at: long });
    const users = new LocalUsers(gw.store);
    await users.remove(LOGIN.username);
    // Nor has any other grant or session asked the provider lately (liveness.ts's stored verdict).
    await gw.store.delete("upstream", LOGIN.username);
    try {
      const gone = await scriptsOf(() => refresh(gw, other, mine));
      expect(outcome(gone.answer)).toBe("400 invalid_grant");
      expect(String(gone.answer.body.error_description)).toMatch(/no longer allowed/);
      expectScripts(gone, { step: 1, rotate: 0 });
      expect(await familyOf(mine)).toBeUndefined();
    } finally {
      await addLocalUser(gw);
    }
  });

  it("index entries due for renewal are written, then the rotation", async (ctx) => {
    skipWithoutRedis(ctx);
    const now = Math.floor(Date.now() / 1000);
    const { refresh_token: t0 } = await obtainTokens(gw, client);
    await storeGrant(t0, { indexed_until: now + 60 });
    const renewed = await scriptsOf(() => refresh(gw, client, t0));
    expect(outcome(renewed.answer)).toBe("200");
    expectScripts(renewed, { step: 1, rotate: 1 });
    expect((await grantOf(t0)).indexed_until).toBeGreaterThanOrEqual(now + 2 * REFRESH_TTL);
    // The next one is plain again.
    const next = await scriptsOf(() => refresh(gw, client, renewed.answer.body.refresh_token as string));
    expect(outcome(next.answer)).toBe("200");
    expectScripts(next, { step: 1, rotate: 0 });
  });

  it("a user the provider now refuses loses the grant, even once the store has rotated", async (ctx) => {
    skipWithoutRedis(ctx);
    const { refresh_token: token } = await obtainTokens(gw, client);
    const users = new LocalUsers(gw.store);
    await users.setDisabled(LOGIN.username, true);
    try {
      // The provider learns of it at a sign-in attempt (local.ts), not from the grant.
      const idp = gw.as.parts.idp as unknown as { verify(u: string, p: string): Promise<unknown> };
      await idp.verify(LOGIN.username, LOGIN.password);
      const refused = await scriptsOf(() => refresh(gw, client, token));
      expect(outcome(refused.answer)).toBe("400 invalid_grant");
      expect(String(refused.answer.body.error_description)).toMatch(/no longer allowed.*disabled/);
      // On Redis the step rotated before the allowlist was asked; the grant is gone either way.
      expectScripts(refused, { step: 1, rotate: 0 });
      expect(await familyOf(token)).toBeUndefined();
      expect(await gw.as.grants.getGrant(sidOf(token))).toBeUndefined();
    } finally {
      await users.setDisabled(LOGIN.username, false);
      const idp = gw.as.parts.idp as unknown as { verify(u: string, p: string): Promise<unknown> };
      await idp.verify(LOGIN.username, LOGIN.password);
    }
  });

  it("an unknown or malformed refresh token: invalid_grant, nothing else", async (ctx) => {
    skipWithoutRedis(ctx);
    const { refresh_token: token } = await obtainTokens(gw, client);
    const unknownSecret = `${sidOf(token)}.${"A".repeat(43)}`;
    for (const bad of [
      unknownSecret,
      `nosuchgrant.${"B".repeat(43)}`,
      "no-dot-at-all",
      `{x}.${"C".repeat(43)}`,
    ]) {
      const answer = await scriptsOf(() => refresh(gw, client, bad));
      expect(outcome(answer.answer)).toBe("400 invalid_grant");
      expectScripts(answer, { step: bad === "no-dot-at-all" || bad.startsWith("{") ? 0 : 1, rotate: 0 });
    }
    // None of them touched the real token.
    expect(outcome(await refresh(gw, client, token))).toBe("200");
  });
});

describe.each(STORES)("the token brake on a refresh, on $name", ({ redis: useRedis }) => {
  const MAX = 6;
  let redis: TestRedis | undefined;
  let gw: RunningGateway;

  beforeAll(async () => {
    if (useRedis) {
      redis = await startRedis();
      if (!redis) return;
    }
    gw = await startFullGateway(
      {
        ...SERVICES,
        ...SEALING,
        rate_limits: {
          token: { per_client: { max: MAX, window: "1h" }, per_address: { max: 10_000, window: "1h" } },
        },
      },
      { redisUrl: redis?.url },
    );
    await addLocalUser(gw);
    // The brake's counts in these tests run to MAX inside one window.
    await roomInBrakeWindow(3600, 30);
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
    await redis?.stop();
  });

  it("counts each request once, inside the step on Redis; past the max 429, the token unspent", async (ctx) => {
    if (useRedis && !redis) ctx.skip();
    const client = await registerClient(gw.url);
    // The code's redemption is the client's first count (a command of its own).
    let token = (await obtainTokens(gw, client)).refresh_token;
    const answers: string[] = [];
    for (let i = 0; i < MAX; i++) {
      const watched = redis
        ? await monitored(redis.url, () => refresh(gw, client, token))
        : { answer: await refresh(gw, client, token), commands: [] };
      answers.push(outcome(watched.answer));
      if (watched.answer.status !== 200) break;
      token = watched.answer.body.refresh_token as string;
      if (redis) {
        // One script from the gateway, the counting inside it: no counting command of its own
        // (a client record read the first time, and a confirmation batch, may come along).
        const top = watched.commands.filter((c) => !c.lua);
        expect(top.filter((c) => c.script && c.script !== "confirm").map((c) => c.script)).toEqual(["step"]);
        expect(top.filter((c) => c.name === "incr")).toEqual([]);
        expect(watched.commands.filter((c) => c.lua && c.name === "incr")).toHaveLength(2);
      }
    }
    expect(answers).toEqual([...Array(MAX - 1).fill("200"), "429 temporarily_unavailable"]);
    // Refused before the rotation: the token presented is still the family's current one.
    const family = (await gw.store.get(FAMILY_NS, familyKey(sidOf(token)))) as { current: string };
    expect(family.current).toBe(hashSecret(token));
    // Past the max the refusal is the answer whatever the token: unknown, malformed, missing.
    for (const extra of [
      { refresh_token: `${sidOf(token)}.${"A".repeat(43)}` },
      { refresh_token: "no-dot-at-all" },
      { refresh_token: "" },
    ]) {
      const res = await refresh(gw, client, token, extra);
      expect(outcome(res)).toBe("429 temporarily_unavailable");
    }
  });

  it("a malformed token naming a real grant is counted like any other request", async (ctx) => {
    if (useRedis && !redis) ctx.skip();
    const client = await registerClient(gw.url);
    const { refresh_token: token } = await obtainTokens(gw, client);
    // Too short a secret: no store step is sent for it, so the endpoint must count it itself.
    const malformed = `${sidOf(token)}.short`;
    const answers: string[] = [];
    for (let i = 0; i < MAX; i++) answers.push(outcome(await refresh(gw, client, malformed)));
    expect(answers).toEqual([...Array(MAX - 1).fill("400 invalid_grant"), "429 temporarily_unavailable"]);
  });

  it("a private_key_jwt client: its count is a command of its own, before the assertion's jti is recorded", async (ctx) => {
    if (useRedis && !redis) ctx.skip();
    const { client, assertion } = await registerKeyClient(gw);
    const signed = async () => ({
      client_assertion_type: JWT_BEARER_ASSERTION,
      client_assertion: await assertion(),
    });
    const { code, verifier } = await obtainCode(gw, client);
    const tokens = await tokenRequest(gw.url, {
      grant_type: "authorization_code",
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
      ...(await signed()),
    });
    expect(tokens.status).toBe(200);
    const form = {
      grant_type: "refresh_token",
      refresh_token: tokens.body.refresh_token as string,
      ...(await signed()),
    };
    const watched = redis
      ? await monitored(redis.url, () => tokenRequest(gw.url, form))
      : { answer: await tokenRequest(gw.url, form), commands: [] };
    expect(outcome(watched.answer)).toBe("200");
    if (redis) {
      const top = watched.commands.filter((c) => !c.lua && c.script !== "confirm");
      const at = (test: (c: Seen) => boolean) => top.findIndex(test);
      const brakes = at((c) => c.script === "other");
      const jti = at((c) => c.name === "set" && c.key.includes(":assertion"));
      const step = at((c) => c.script === "step");
      // The brakes' own script, then the jti's write, then the refresh step (without counters).
      expect({ brakes: brakes >= 0, jti: jti > brakes, step: step > jti }).toEqual({
        brakes: true,
        jti: true,
        step: true,
      });
      expect(top.filter((c) => c.script === "step")).toHaveLength(1);
    }
  });
});

describe.each(STORES)(
  "the token brake before a client metadata document is fetched, on $name",
  ({ redis: useRedis }) => {
    const MAX = 3;
    let redis: TestRedis | undefined;
    let gw: RunningGateway;
    let docs: Server;
    let docBase: string;
    let fetches = 0;

    beforeAll(async () => {
      if (useRedis) {
        redis = await startRedis();
        if (!redis) return;
      }
      docs = createServer((_req, res) => {
        fetches++;
        res.writeHead(404).end();
      });
      await new Promise<void>((resolve) => docs.listen(0, "127.0.0.1", resolve));
      docBase = `http://127.0.0.1:${(docs.address() as AddressInfo).port}`;
      gw = await startFullGateway(
        {
          ...SEALING,
          cimd: { allow_private_addresses: true },
          rate_limits: {
            token: { per_client: { max: 10_000, window: "1h" }, per_address: { max: MAX, window: "1h" } },
          },
        },
        { redisUrl: redis?.url },
      );
      // The brake's counts in these tests run to MAX inside one window.
      await roomInBrakeWindow(3600, 30);
    });
    afterAll(async () => {
      await gw?.close({ wipe: true });
      await redis?.stop();
      if (docs) await new Promise((resolve) => docs.close(resolve));
    });

    it("past the address's max a refresh naming a document URL is refused without fetching it", async (ctx) => {
      if (useRedis && !redis) ctx.skip();
      const attempt = (i: number) =>
        tokenRequest(gw.url, {
          grant_type: "refresh_token",
          client_id: `${docBase}/clients/${i}.json`,
          refresh_token: `nosuchgrant.${"A".repeat(43)}`,
        });
      for (let i = 0; i < MAX; i++) expect((await attempt(i)).status).not.toBe(429);
      const fetched = fetches;
      expect(fetched).toBeGreaterThan(0);
      for (let i = MAX; i < MAX + 3; i++)
        expect(outcome(await attempt(i))).toBe("429 temporarily_unavailable");
      // The brake answered first: nothing was asked of the documents' server.
      expect(fetches).toBe(fetched);
    });
  },
);

describe("a refresh with wait_replicas and no replica to confirm", () => {
  let redis: TestRedis | undefined;
  let plain: RunningGateway;
  let waiting: RunningGateway;
  let client: RegisteredClient;

  beforeAll(async () => {
    redis = await startRedis();
    if (!redis) return;
    plain = await startFullGateway({ ...SERVICES, ...SEALING }, { redisUrl: redis.url });
    await addLocalUser(plain);
    // A second instance on the same data that holds every write to one replica, which this
    // Redis does not have: whatever it writes answers 503.
    waiting = await startFullGateway(
      {
        ...SERVICES,
        ...SEALING,
        tokens: plain.config.tokens,
        public_url: plain.config.public_url,
        store: {
          type: "redis",
          redis: { url: redis.url, key_prefix: `t${plain.port}:`, wait_replicas: 1, wait_timeout: 1 },
        },
      },
      { dataDir: plain.dataDir },
    );
    client = await registerClient(plain.url);
  });
  afterAll(async () => {
    await waiting?.close();
    await plain?.close({ wipe: true });
    await redis?.stop();
  });

  it("answers what it decided when it wrote nothing; a rotation it could not hold is a 503 the retry recovers", async (ctx) => {
    if (process.env.CI !== "true" && !redis) ctx.skip();
    const { refresh_token: token } = await obtainTokens(plain, client, { scope: "notes:read" });
    // Declined by the step, refused by the two-step checks: no write, so no wait.
    const wider = await refresh(waiting, client, token, { scope: "notes:read notes:write" });
    expect(outcome(wider)).toBe("400 invalid_scope");
    // Rotated, but no replica holds it: 503, and the client keeps the token it has.
    const lost = await refresh(waiting, client, token);
    expect(outcome(lost)).toBe("503 temporarily_unavailable");
    // Its retry (on the other instance) gets the successor that answer never delivered.
    const retry = await refresh(plain, client, token);
    expect(outcome(retry)).toBe("200");
    const again = await refresh(plain, client, token);
    expect(again.body.refresh_token).toBe(retry.body.refresh_token);
    expect(outcome(await refresh(plain, client, retry.body.refresh_token as string))).toBe("200");
  });
});

describe.each(STORES)(
  "the refresh brake per address behind a trusted proxy, on $name",
  ({ redis: useRedis }) => {
    const MAX = 3;
    let redis: TestRedis | undefined;
    let gw: RunningGateway;
    let client: RegisteredClient;
    const agents: Agent[] = [];

    beforeAll(async () => {
      if (useRedis) {
        redis = await startRedis();
        if (!redis) return;
      }
      gw = await startFullGateway(
        {
          ...SERVICES,
          ...SEALING,
          // The proxy is 127.0.0.1; 127.0.0.2 is a client reaching the gateway directly.
          trust_proxy: "127.0.0.1",
          rate_limits: {
            token: { per_client: { max: 10_000, window: "1h" }, per_address: { max: MAX, window: "1h" } },
          },
        },
        { redisUrl: redis?.url },
      );
      await addLocalUser(gw);
      client = await registerClient(gw.url);
      // The brake's counts in these tests run to MAX inside one window.
      await roomInBrakeWindow(3600, 30);
    });
    afterAll(async () => {
      for (const agent of agents) await agent.close();
      await gw?.close({ wipe: true });
      await redis?.stop();
    });

    /** A refresh of an unknown token from socket address `local`, with an X-Forwarded-For. */
    async function attempt(local: string, forwardedFor: string): Promise<string> {
      const agent = new Agent({ localAddress: local });
      agents.push(agent);
      const res = await request(`${gw.url}/token`, {
        method: "POST",
        dispatcher: agent,
        headers: { "content-type": "application/x-www-form-urlencoded", "x-forwarded-for": forwardedFor },
        body: new URLSearchParams({
          grant_type: "refresh_token",
          client_id: client.client_id,
          refresh_token: `nosuchgrant.${"A".repeat(43)}`,
        }).toString(),
      });
      const body = JSON.parse(await res.body.text()) as { error?: string };
      return `${res.statusCode} ${body.error ?? ""}`.trim();
    }

    it("counts the address the proxy forwarded, and a direct client's own address whatever it forges", async (ctx) => {
      if (useRedis && !redis) ctx.skip();
      // Through the proxy: the forwarded address is the one counted.
      for (let i = 0; i < MAX; i++)
        expect(await attempt("127.0.0.1", "203.0.113.7")).toBe("400 invalid_grant");
      expect(await attempt("127.0.0.1", "203.0.113.7")).toBe("429 temporarily_unavailable");
      expect(await attempt("127.0.0.1", "203.0.113.8")).toBe("400 invalid_grant");
      // Directly, forging a fresh X-Forwarded-For each time: counted as 127.0.0.2 all the same.
      const direct: string[] = [];
      for (let i = 0; i <= MAX; i++) direct.push(await attempt("127.0.0.2", `198.51.100.${i + 1}`));
      expect(direct).toEqual([...Array(MAX).fill("400 invalid_grant"), "429 temporarily_unavailable"]);
    });
  },
);
