/**
 * Rules both Store engines apply the same way, so code that works on one works on the other.
 */

/**
 * TTL: `undefined` or 0 means no expiry; otherwise a positive number of seconds (fractions
 * allowed), returned in whole milliseconds (at least 1).
 */
export function ttlToMillis(ttlSeconds: number | undefined): number | undefined {
  if (ttlSeconds === undefined || ttlSeconds === 0) return undefined;
  if (!Number.isFinite(ttlSeconds) || ttlSeconds < 0) {
    throw new RangeError(`ttlSeconds must be a non-negative finite number, got ${ttlSeconds}`);
  }
  return Math.max(1, Math.round(ttlSeconds * 1000));
}

/** Where Redis keeps the owner indexes (`{prefix}index:{owner}`): no key/value namespace may be called so. */
export const INDEX_NAMESPACE = "index";

/**
 * Namespaces are non-empty and contain no ":" — Redis keys are `{prefix}{ns}:{key}`, so a ":" in
 * a namespace would let one namespace's listing see another's entries — and are not the owner
 * indexes' own.
 */
export function assertNamespace(ns: string): void {
  if (ns === "" || ns.includes(":") || ns === INDEX_NAMESPACE) {
    throw new RangeError(`invalid store namespace ${JSON.stringify(ns)}`);
  }
}

/** Owner names are non-empty and bounded: they become part of a key. */
export function assertOwner(owner: string): void {
  if (owner === "" || owner.length > 1024) throw new RangeError("invalid owner index name");
}
