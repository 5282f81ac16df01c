/**
 * Signing keys: persisted, rotated with the old key still verifying, always sealed at rest (a
 * wrong secret stops start-up with a clear line), and keys an older version stored in the clear
 * sealed in place when the ring opens.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, generateKeyPair, jwtVerify, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { KeyRing } from "../../src/oauth/keys.js";
import { SqliteStore } from "../../src/store/sqlite.js";

const SECRET = "correct horse battery staple";
const options = { alg: "ES256" as const, accessTtlSeconds: 3600, encryptionSecret: SECRET };

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

  it("seals private keys at rest", async () => {
    const store = new SqliteStore(":memory:");
    const ring = await KeyRing.open(store, options);
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

    await expect(
      KeyRing.open(store, {
        ...options,
        encryptionSecret: "another secret, wrong",
        secretSource: "/srv/data/secret",
      }),
    ).rejects.toThrow("the encryption secret (/srv/data/secret) is not the one it was sealed with");
    await store.close();
  });

  it("seals in place the plain keys an older version stored, keeping kid, fields and lifetime", async () => {
    const store = new SqliteStore(":memory:");
    const plainKey = async (kid: string, createdAt: number) => {
      const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
      return {
        kid,
        alg: "ES256",
        private_jwk: { ...(await exportJWK(privateKey)), kid, alg: "ES256" },
        public_jwk: { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" },
        created_at: createdAt,
      };
    };
    const retireAt = Date.now() + 1800_000;
    await store.put(
      "keys",
      "old",
      { ...(await plainKey("old", Date.now() - 10_000)), retire_at: retireAt } as never,
      1800,
    );
    await store.put("keys", "current", (await plainKey("current", Date.now())) as never);

    const ring = await KeyRing.open(store, options);
    expect(ring.signingKey().kid).toBe("current");
    const entries = (await store.list("keys")) as Array<{
      key: string;
      value: Record<string, unknown>;
      expiresAt?: number;
    }>;
    expect(entries.map((e) => e.key).sort()).toEqual(["current", "old"]);
    for (const { value } of entries) {
      expect(value.private_jwk).toBeUndefined();
      expect(value.private_sealed).toBeDefined();
    }
    const old = entries.find((e) => e.key === "old");
    expect(old?.value.retire_at).toBe(retireAt);
    expect(old?.expiresAt).toBeGreaterThan(Date.now() + 1790_000);
    expect(old?.expiresAt).toBeLessThanOrEqual(Date.now() + 1801_000);
    expect(entries.find((e) => e.key === "current")?.expiresAt).toBeUndefined();
    const token = await sign(ring);
    ring.close();

    // Sealed with this secret: another instance with it signs with the same key.
    const again = await KeyRing.open(store, options);
    expect(await verifies(again, token)).toBe(true);
    again.close();
    await store.close();
  });
});
