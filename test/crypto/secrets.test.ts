import { describe, expect, it } from "vitest";
import { hashesEqual, hashSecret, newSecret, randomPooled } from "../../src/crypto/secrets.js";

describe("secrets", () => {
  it("hands out every pooled random byte once, across pool refills", () => {
    // 40,000 secrets draw about 300 pools; a byte handed out twice would repeat a secret.
    const seen = new Set<string>();
    for (let i = 0; i < 40_000; i++) {
      const secret = newSecret();
      expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
      seen.add(secret);
    }
    expect(seen.size).toBe(40_000);
    // Views handed out one after the other do not overlap.
    const a = randomPooled(12);
    const b = randomPooled(12);
    expect(a.buffer !== b.buffer || a.byteOffset + a.length <= b.byteOffset).toBe(true);
    // Big requests are drawn on their own.
    expect(randomPooled(4096)).toHaveLength(4096);
  });

  it("compares stored hashes: equal ones match, anything else does not", () => {
    const h = hashSecret("a token");
    expect(hashesEqual(h, hashSecret("a token"))).toBe(true);
    expect(hashesEqual(h, hashSecret("another token"))).toBe(false);
    expect(hashesEqual(undefined, h)).toBe(false);
    expect(hashesEqual(h.slice(1), h)).toBe(false);
    expect(hashesEqual(`${h}x`, `${h}x`)).toBe(false);
    expect(hashesEqual(42 as unknown as string, h)).toBe(false);
  });
});
