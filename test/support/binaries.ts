/**
 * Tests that need a system binary (nginx, caddy, redis-server): skipped with a message when it
 * is missing, except in CI (`CI=true`), where a missing binary is a failure.
 */
import { accessSync, constants } from "node:fs";

export interface BinaryCheck {
  available: boolean;
  /** Why the suite is skipped, or undefined when it runs. */
  reason?: string;
}

export function checkBinary(path: string): BinaryCheck {
  try {
    accessSync(path, constants.X_OK);
    return { available: true };
  } catch {
    const reason = `${path} is not installed`;
    if (process.env.CI === "true") throw new Error(`${reason}, and CI=true requires it`);
    console.warn(`skipping: ${reason}`);
    return { available: false, reason };
  }
}
