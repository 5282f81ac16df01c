/**
 * How long a revocation takes to bite at one gateway: its /verify (for the `notes` service)
 * polled until it refuses a token. Shared by the revocation-reach tests (instances in this
 * process, and serve processes on one SQLite file).
 */
import { expect } from "vitest";

/** What every instance must manage, whatever its cache bound. */
export const REACH_MS = 1_000;
/** How long to keep polling past the bound, so that a failure says how long it did take. */
export const WATCH_MS = 8_000;

/** The status of `GET /verify?service=notes` at `gw` with `token`. */
export async function verify(gw: { url: string }, token: string): Promise<number> {
  const res = await fetch(`${gw.url}/verify?service=notes`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await res.arrayBuffer();
  return res.status;
}

/**
 * Polls /verify until it refuses `token` (every answer before that must be 200); the
 * milliseconds from `since` that took (Infinity: never, within WATCH_MS).
 */
export async function msUntilRefused(gw: { url: string }, token: string, since: number): Promise<number> {
  while (Date.now() - since < WATCH_MS) {
    const status = await verify(gw, token);
    if (status === 401) return Date.now() - since;
    expect(status).toBe(200);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Number.POSITIVE_INFINITY;
}
