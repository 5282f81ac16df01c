/**
 * The access-token contract as both sides use it: tokens minted by the authorization server's
 * KeyRing verify on the resource side with public keys only (a PublicKeySet on the same store,
 * which never sees the sealing secret), across a rotation, and the time rules hold (issued in
 * the future or not valid yet: refused).
 */
import { describe, expect, it } from "vitest";
import { KeyRing } from "../../src/oauth/keys.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { PublicKeySet } from "../../src/tokens/key-set.js";
import { InvalidAccessToken, MAX_IAT_AHEAD_S, verifyAccessToken } from "../../src/tokens/verify.js";
import { foreignKey, mintAccessToken } from "../support/mint.js";

const ISS = "http://127.0.0.1:9";
const AUD = `${ISS}/echo/mcp`;
const SECRET = "correct horse battery staple";

async function setup() {
  const store = new SqliteStore(":memory:");
  const ring = await KeyRing.open(store, { alg: "ES256", accessTtlSeconds: 3600, encryptionSecret: SECRET });
  const publicKeys = await PublicKeySet.open(store);
  return {
    store,
    ring,
    publicKeys,
    async close() {
      ring.close();
      publicKeys.close();
      await store.close();
    },
  };
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof InvalidAccessToken) return err.message;
    throw err;
  }
  throw new Error("the token was accepted");
}

describe("access tokens between the two sides", () => {
  it("verify with the published public keys alone, sealed private keys notwithstanding", async () => {
    const t = await setup();
    try {
      // The stored keys are sealed: only the ring (with the secret) can read the private part.
      const stored = (await t.store.list("keys")).map((e) => ({ value: e.value as Record<string, unknown> }));
      expect(stored.every((e) => e.value.private_sealed && !e.value.private_jwk)).toBe(true);
      const token = await mintAccessToken(t.ring, { iss: ISS, aud: AUD });
      const claims = await verifyAccessToken(token, t.publicKeys, ISS);
      expect(claims.aud).toBe(AUD);
      // The resource side's key set offers nothing that signs.
      expect("signingKey" in t.publicKeys).toBe(false);
    } finally {
      await t.close();
    }
  });

  it("follow a rotation made by another instance's ring, and refuse a foreign key", async () => {
    const t = await setup();
    try {
      const before = await mintAccessToken(t.ring, { iss: ISS, aud: AUD });
      await verifyAccessToken(before, t.publicKeys, ISS);
      // Another instance rotates: this key set learns the new kid on first sight of it.
      const other = await KeyRing.open(t.store, {
        alg: "ES256",
        accessTtlSeconds: 3600,
        encryptionSecret: SECRET,
      });
      await other.rotate();
      const after = await mintAccessToken(other, { iss: ISS, aud: AUD });
      await verifyAccessToken(after, t.publicKeys, ISS);
      await verifyAccessToken(before, t.publicKeys, ISS);
      other.close();
      const forged = await mintAccessToken(t.ring, { iss: ISS, aud: AUD }, { signWith: await foreignKey() });
      expect(await refusal(verifyAccessToken(forged, t.publicKeys, ISS))).toMatch(/not signed by a key/);
    } finally {
      await t.close();
    }
  });

  it("refuse a correctly signed token issued in the future, or not valid yet", async () => {
    const t = await setup();
    try {
      const now = Math.floor(Date.now() / 1000);
      const ahead = await mintAccessToken(t.ring, { iss: ISS, aud: AUD, iat: now + 86_400 }, { ttl: 90_000 });
      expect(await refusal(verifyAccessToken(ahead, t.publicKeys, ISS))).toMatch(/issued in the future/);
      const notYet = await mintAccessToken(t.ring, { iss: ISS, aud: AUD, nbf: now + 600 } as never);
      expect(await refusal(verifyAccessToken(notYet, t.publicKeys, ISS))).toMatch(/not valid yet/);
      // Clock skew between instances within the bound is fine.
      const skewed = await mintAccessToken(t.ring, { iss: ISS, aud: AUD, iat: now + MAX_IAT_AHEAD_S - 10 });
      await verifyAccessToken(skewed, t.publicKeys, ISS);
    } finally {
      await t.close();
    }
  });
});
