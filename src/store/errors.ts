/**
 * The one failure every store implementation reports when it cannot answer right now (server
 * down, connection lost, command timed out, database locked or out of space). Each HTTP subtree
 * converts it once, in its own shape: 503 with Retry-After, never a 500. Callers must not catch
 * it to carry on: an operation that hit it has changed nothing it could not finish atomically.
 */
export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";
  /** What the 503's Retry-After says, in seconds. */
  readonly retryAfterSeconds: number;

  constructor(message: string, options: { cause?: unknown; retryAfterSeconds?: number } = {}) {
    super(message, { cause: options.cause });
    this.retryAfterSeconds = options.retryAfterSeconds ?? 5;
  }
}
