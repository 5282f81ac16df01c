/**
 * Signing keys: persisted, rotated with the old key still verifying, and sealed at rest when an
 * encryption secret is configured (a wrong or missing secret stops start-up with a clear line).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jwtVerify, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { KeyRing } from "../../src/oauth/keys.js";
import { SqliteStore } from "../../src/store/sqlite.js";

const SECRET = "correct horse battery staple";
const options = { alg: "ES256" as const, accessTtlSeconds: 3600 };

async function sign(ring: KeyRing): Promise<string> {
  const { kid, alg, key } = ring.signingKey();
  return new SignJWT({ x: 1 }).setProtectedHeader({ alg, kid }).sign(key);
}

async function verifies(ring: KeyRing, token: string): Promise<boolean> {
  const { kid } = JSON.parse(Buffer.from(token.split(".")[0] as string, "base64url").toString()) as {
    kid: string;
  };
  const found = await ring.verificationKey(kid);
  if (!found) return false;
  await jwtVerify(token, found.key);
  return true;
}

describe("KeyRing", () => {
  it("keeps its keys across a restart and rotates without breaking tokens already out", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "mcpgw-keys-")), "k.db");
    let store = new SqliteStore(file);
    let ring = await KeyRing.open(store, options);
    const before = await sign(ring);
    const firstKid = ring.signingKey().kid;
    ring.close();
    await store.close();

    store = new SqliteStore(file);
    ring = await KeyRing.open(store, options);
    expect(ring.signingKey().kid).toBe(firstKid);
    const newKid = await ring.rotate();
    expect(ring.signingKey().kid).toBe(newKid);
    expect(
      ring
        .jwks()
        .keys.map((k) => k.kid)
        .sort(),
    ).toEqual([firstKid, newKid].sort());
    expect(await verifies(ring, before)).toBe(true);
    expect(await verifies(ring, await sign(ring))).toBe(true);
    // The rotated-out key expires with the longest-lived token it signed.
    const entry = (await store.list("keys")).find((e) => e.key === firstKid);
    expect(entry?.expiresAt).toBeGreaterThan(Date.now() + 3600_000);
    expect(entry?.expiresAt).toBeLessThan(Date.now() + 3700_000);
    ring.close();
    await store.close();
  });

  it("seals private keys at rest with keys.encryption_secret", async () => {
    const store = new SqliteStore(":memory:");
    const ring = await KeyRing.open(store, { ...options, encryptionSecret: SECRET });
    const token = await sign(ring);
    const [stored] = (await store.list("keys")) as Array<{ value: Record<string, unknown> }>;
    expect(stored?.value.private_jwk).toBeUndefined();
    expect(JSON.stringify(stored?.value)).not.toContain('"d":');
    ring.close();

    // Another instance with the same secret signs with the same key.
    const again = await KeyRing.open(store, { ...options, encryptionSecret: SECRET });
    expect(again.signingKey().kid).toBe(ring.signingKey().kid);
    expect(await verifies(again, token)).toBe(true);
    again.close();

    await expect(KeyRing.open(store, options)).rejects.toThrow(/is encrypted: set keys.encryption_secret/);
    await expect(
      KeyRing.open(store, { ...options, encryptionSecret: "another secret, wrong" }),
    ).rejects.toThrow(/not the one it was sealed with/);
    await store.close();
  });
});
