/**
 * Bearer secrets (codes, refresh tokens, client secrets, registration tokens, CSRF tokens):
 * random, stored only as SHA-256 hashes, and compared in constant time — every comparison of a
 * secret in the program goes through `constantTimeEqual`.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Random bytes are drawn from the CSPRNG a few kilobytes at a time and handed out in order,
 * each byte once, as Node's randomUUID does with its own cache: one call into OpenSSL per
 * hundred secrets instead of one per secret (a refresh draws two values: its successor and the
 * sealing IV). Requests bigger than a quarter of the pool are drawn on their own.
 */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolOffset = 0;

/** `bytes` fresh random bytes (a view into the pool: copy them before keeping them long). */
export function randomPooled(bytes: number): Buffer {
  if (bytes > POOL_BYTES / 4) return randomBytes(bytes);
  if (poolOffset + bytes > pool.length) {
    pool = randomBytes(POOL_BYTES);
    poolOffset = 0;
  }
  const out = pool.subarray(poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return out;
}

/** 256 bits of randomness, base64url: unguessable and URL-safe. */
export function newSecret(bytes = 32): string {
  return randomPooled(bytes).toString("base64url");
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

/** Length of a SHA-256 digest in base64url without padding. */
const HASH_LENGTH = 43;

/**
 * Whether two {@link hashSecret} values are equal, in constant time. Both are 43 characters
 * whatever they hash, so they are compared as they are, without hashing them again; anything
 * else (undefined, a value of another length) never matches.
 */
export function hashesEqual(a: string | undefined, b: string): boolean {
  if (a === undefined || a.length !== HASH_LENGTH || b.length !== HASH_LENGTH) return false;
  return timingSafeEqual(Buffer.from(a, "latin1"), Buffer.from(b, "latin1"));
}

/** Constant-time check of a presented secret against a stored hash. */
export function secretMatches(presented: string, storedHash: string): boolean {
  return constantTimeEqual(hashSecret(presented), storedHash);
}
