/**
 * Bearer secrets (codes, refresh tokens, client secrets, registration tokens): random,
 * stored only as SHA-256 hashes, compared in constant time.
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

/** Constant-time check of a presented secret against a stored hash. */
export function secretMatches(presented: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(presented));
  const b = Buffer.from(storedHash);
  return a.length === b.length && timingSafeEqual(a, b);
}
