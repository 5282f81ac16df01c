/**
 * Start-up steps that need the store (connecting, the signing keys' first read, subscribing to
 * the change feed, the first-run admin), tried again while the store cannot answer, until
 * `store.startup_timeout` has passed since start-up began. A Redis that is still starting, briefly
 * unreachable, or too slow for one command on a loaded machine (the client's command_timeout is
 * measured on the gateway's event loop, which a busy machine stalls too) delays start-up with a
 * warning per failed attempt instead of ending it; one that stays away ends it with one line.
 *
 * Only StoreUnavailableError is tried again: every other failure (a wrong password, a key that
 * cannot be unsealed) is final at once. Each step must be safe to run again after a failure,
 * which the steps listed above are (they read, or write what a second run writes the same).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { StoreUnavailableError } from "./errors.js";

/** The pause after the first failed attempt; it doubles up to the next constant. */
const FIRST_PAUSE_MS = 250;
const MAX_PAUSE_MS = 2_000;

export interface StartupWait {
  /** Until when (ms since the epoch) a step is tried again. */
  readonly deadline: number;
  /** `store.startup_timeout`, for the final message. */
  readonly timeoutSeconds: number;
  /** Where each failed attempt is reported (the gateway's logger at warn). */
  readonly warn: (fields: Record<string, unknown>, message: string) => void;
}

/** A start-up that began now and may wait `timeoutSeconds` for the store. */
export function startupWait(timeoutSeconds: number, warn: StartupWait["warn"]): StartupWait {
  return { deadline: Date.now() + timeoutSeconds * 1000, timeoutSeconds, warn };
}

/**
 * Runs `run` until it succeeds, throws something other than StoreUnavailableError, or the
 * start-up deadline has passed (then a StoreUnavailableError naming the step and the setting).
 * Without a wait, runs it once.
 */
export async function untilStoreAnswers<T>(
  wait: StartupWait | undefined,
  step: string,
  run: () => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      if (!wait || !(err instanceof StoreUnavailableError)) throw err;
      const left = wait.deadline - Date.now();
      if (left <= 0) {
        throw new StoreUnavailableError(
          `the store did not answer within store.startup_timeout (${wait.timeoutSeconds} s): ${step}: ${err.message}`,
          { cause: err, retryAfterSeconds: err.retryAfterSeconds },
        );
      }
      const pause = Math.min(FIRST_PAUSE_MS * 2 ** (attempt - 1), MAX_PAUSE_MS, left);
      wait.warn(
        {
          step,
          attempt,
          err: err.message,
          retry_in_ms: pause,
          deadline: new Date(wait.deadline).toISOString(),
        },
        "store not answering at start-up; trying again",
      );
      await sleep(pause);
    }
  }
}
