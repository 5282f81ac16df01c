/**
 * Bearer secrets (codes, refresh tokens, client secrets, registration tokens, CSRF tokens):
 * random, stored only as SHA-256 hashes, and compared in constant time — every comparison of a
 * secret in the program goes through `constantTimeEqual`.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** 256 bits of randomness, base64url: unguessable and URL-safe. */
export function newSecret(bytes = 32): string {
  return randomBytes(bytes).toString("base64url");
}

/** The at-rest form of a high-entropy secret (a slow hash adds nothing at 256 bits). */
export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("base64url");
}

const digest = (value: string | Buffer): Buffer => createHash("sha256").update(value).digest();

/**
 * Whether two secrets are equal, in time that depends on neither: both sides are hashed to 32
 * bytes first, so not even their lengths leak. `undefined` never matches.
 */
export function constantTimeEqual(a: string | Buffer | undefined, b: string | Buffer): boolean {
  if (a === undefined) return false;
  return timingSafeEqual(digest(a), digest(b));
}

/** Constant-time check of a presented secret against a stored hash. */
export function secretMatches(presented: string, storedHash: string): boolean {
  return constantTimeEqual(hashSecret(presented), storedHash);
}
