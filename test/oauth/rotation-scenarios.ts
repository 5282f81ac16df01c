/**
 * Refresh-token rotation as several gateways on one store see it (OAuth 2.1 §4.3.1, RFC 9700
 * §4.14): one live refresh token per grant, the predecessor served only inside the grace window
 * and only with the same successor, anything older is reuse and ends the grant. Shared by the
 * in-process pairs (scale-out.test.ts) and the pair of processes on one SQLite file.
 */
import { expect } from "vitest";
import { type RegisteredClient, registerClient } from "../support/oauth-client.js";
import { type AtUrl, obtainTokens, refresh } from "./helpers.js";

export type Pair = [AtUrl, AtUrl];
type Answer = { status: number; body: Record<string, unknown> };

/** A sealing secret, so the grace window can hand out the same successor again. */
export const SEALING = { keys: { encryption_secret: "rotation tests sealing secret" } };

const outcome = (r: Answer) => `${r.status} ${r.body.error ?? ""}`.trim();

/** A fresh client with one login on the first gateway. */
async function login(pair: Pair): Promise<{ client: RegisteredClient; token: string }> {
  const client = await registerClient(pair[0].url);
  const { refresh_token: token } = await obtainTokens(pair[0], client);
  return { client, token };
}

/** `n` refreshes of one token at once, alternating between the two gateways. */
export function refreshStorm(pair: Pair, client: RegisteredClient, token: string, n = 20): Promise<Answer[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => refresh(pair[i % 2] as AtUrl, client, token)));
}

/**
 * Tries every refresh token the storm handed out, one after another, then the original: exactly
 * one of them may work. Every answer is 200 or invalid_grant, never anything else.
 */
async function expectOneLiveToken(pair: Pair, client: RegisteredClient, original: string, answers: Answer[]) {
  const issued = [...new Set(answers.map((r) => r.body.refresh_token).filter((t): t is string => !!t))];
  const tries: Answer[] = [];
  for (const [i, token] of issued.entries()) tries.push(await refresh(pair[i % 2] as AtUrl, client, token));
  const working = tries.filter((r) => r.status === 200).length;
  expect({ issued: issued.length, working }).toEqual({ issued: 1, working: 1 });
  const again = await refresh(pair[1], client, original);
  for (const r of [...answers, ...tries, again]) expect(["200", "400 invalid_grant"]).toContain(outcome(r));
  // The original is now two rotations old.
  expect(outcome(again)).toBe("400 invalid_grant");
}

/**
 * 20 concurrent refreshes over both gateways with a sealing secret: every one is answered 200
 * with the same successor (one rotated, the others inside the grace window), and afterwards
 * exactly one refresh token of the family works.
 */
export async function stormServesOneSuccessor(pair: Pair): Promise<void> {
  const { client, token } = await login(pair);
  const answers = await refreshStorm(pair, client, token);
  expect(answers.map(outcome)).toEqual(Array(20).fill("200"));
  expect(new Set(answers.map((r) => r.body.refresh_token)).size).toBe(1);
  // Each answer carries an access token of its own.
  expect(new Set(answers.map((r) => r.body.access_token)).size).toBe(20);
  await expectOneLiveToken(pair, client, token, answers);
}

/** A token two rotations old is invalid_grant and ends the grant, whichever gateway sees it. */
export async function twoRotationsOldEndsTheGrant(pair: Pair): Promise<void> {
  const [a, b] = pair;
  const { client, token: t0 } = await login(pair);
  const first = await refresh(a, client, t0);
  expect(outcome(first)).toBe("200");
  const second = await refresh(b, client, first.body.refresh_token as string);
  expect(outcome(second)).toBe("200");
  const old = await refresh(a, client, t0);
  expect(outcome(old)).toBe("400 invalid_grant");
  // The grant is revoked: its newest refresh token is dead on both gateways.
  for (const gw of pair) {
    expect(outcome(await refresh(gw, client, second.body.refresh_token as string))).toBe("400 invalid_grant");
  }
}

/**
 * Rotating on one gateway and replaying the predecessor on the other (a retry after a lost
 * answer) returns the same successor, not a second chain; once that successor is used, the
 * predecessor is reuse.
 */
export async function replayOnTheOtherGateway(pair: Pair): Promise<void> {
  const [a, b] = pair;
  const { client, token: t0 } = await login(pair);
  const rotated = await refresh(a, client, t0);
  expect(outcome(rotated)).toBe("200");
  const replay = await refresh(b, client, t0);
  expect(outcome(replay)).toBe("200");
  expect(replay.body.refresh_token).toBe(rotated.body.refresh_token);
  expect(replay.body.access_token).not.toBe(rotated.body.access_token);
  const next = await refresh(b, client, rotated.body.refresh_token as string);
  expect(outcome(next)).toBe("200");
  expect(outcome(await refresh(a, client, t0))).toBe("400 invalid_grant");
  expect(outcome(await refresh(b, client, next.body.refresh_token as string))).toBe("400 invalid_grant");
}
