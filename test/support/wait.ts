/**
 * Waiting in tests for a condition, never for a guess of how long something takes: on a busy
 * machine any fixed sleep is sometimes too short.
 */

/**
 * Polls `check` until it returns something other than undefined/false, and returns that;
 * throws naming `what` after `timeoutMs`.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 20_000, intervalMs = 20 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Returns once the abuse brakes' current window of `windowSeconds` has at least `roomSeconds`
 * left, waiting for the next window if need be. The brakes count in fixed windows that start at
 * multiples of their length (src/ops/rate-limit.ts), so a test that sends `max` requests and
 * expects the next one refused fails whenever a boundary passes mid-run and the count starts
 * again: rare on an idle machine, not on a busy one.
 */
export async function roomInBrakeWindow(windowSeconds: number, roomSeconds: number): Promise<void> {
  if (roomSeconds >= windowSeconds) throw new Error("the room asked for must be shorter than the window");
  const windowMs = windowSeconds * 1000;
  for (;;) {
    const left = windowMs - (Date.now() % windowMs);
    if (left >= roomSeconds * 1000) return;
    // Just past the boundary, then look again (timers may fire early by a millisecond).
    await new Promise((resolve) => setTimeout(resolve, left + 10));
  }
}
