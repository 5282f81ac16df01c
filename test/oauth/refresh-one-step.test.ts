/**
 * A refresh on Redis is one store step (REFRESH_STEP_LUA: the reads, the checks a plain refresh
 * passes, the rotation); anything else is declined with nothing changed and decided in two steps
 * as before. Every branch runs through the real gateway on SQLite (always two steps, the
 * reference) and on a real redis-server, with the same answers; on Redis, MONITOR shows which
 * scripts ran, so a branch cannot pass by taking the other path.
 */
import { createHash } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalUsers } from "../../src/idp/local.js";
import type { Grant } from "../../src/oauth/grant-store.js";
import { REFRESH_STEP_LUA, ROTATE_REFRESH_LUA } from "../../src/store/redis-rotation.js";
import { FAMILY_NS, familyKey } from "../../src/store/refresh-rotation.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { type RegisteredClient, registerClient } from "../support/oauth-client.js";
import { startRedis, type TestRedis } from "../support/redis.js";
import { addLocalUser, LOGIN, obtainTokens, refresh, SERVICES, STORES } from "./helpers.js";
import { SEALING } from "./rotation-scenarios.js";

const sha1 = (text: string) => createHash("sha1").update(text).digest("hex");
const SCRIPTS = { step: sha1(REFRESH_STEP_LUA), rotate: sha1(ROTATE_REFRESH_LUA) };
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

  /**
   * Runs `request` and, on Redis, counts the refresh scripts it ran (MONITOR; a marker sent
   * after the answer shows every command of the request has been streamed).
   */
  async function scriptsOf<T>(
    request: () => Promise<T>,
  ): Promise<{ answer: T; step?: number; rotate?: number }> {
    if (!redis) return { answer: await request() };
    const monitorClient = new Redis(redis.url);
    const marker = `refresh-one-step-${Date.now()}-${Math.random()}`;
    const counts = { step: 0, rotate: 0 };
    let seen: () => void = () => {};
    const markerSeen = new Promise<void>((resolve) => {
      seen = resolve;
    });
    const monitor = await monitorClient.monitor();
    monitor.on("monitor", (_time: string, args: string[]) => {
      const [name, first] = args.map(String);
      if (name?.toLowerCase() === "echo" && first === marker) seen();
      // EVALSHA, or EVAL with the script's text the first time (ioredis on NOSCRIPT; MONITOR
      // shows that text escaped, so it is told by a line only that script has).
      const command = name?.toLowerCase();
      const script = command === "evalsha" ? first : command === "eval" ? (first ?? "") : undefined;
      if (script === undefined) return;
      if (script === SCRIPTS.step || script.includes(STEP_ONLY)) counts.step++;
      if (script === SCRIPTS.rotate || script.includes(ROTATE_ONLY)) counts.rotate++;
    });
    try {
      const answer = await request();
      const probe = new Redis(redis.url);
      await probe.echo(marker);
      probe.disconnect();
      await markerSeen;
      return { answer, ...counts };
    } finally {
      monitor.disconnect();
      monitorClient.disconnect();
    }
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
