/**
 * Access tokens are signed with node:crypto (oauth/jws-signer.ts), not jose: for every signing
 * algorithm, what TokenIssuer mints must verify with jose against the published JWKS and with
 * the gateway's own verifier, carry the header RFC 9068 asks for (alg, kid, typ at+jwt), and
 * read the same as a token jose signs with the same claims and key.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalJWKSet, decodeProtectedHeader, importJWK, jwtVerify, SignJWT } from "jose";
import { afterAll, describe, expect, it } from "vitest";
import type { Grant } from "../../src/oauth/grant-store.js";
import { TokenIssuer } from "../../src/oauth/issuer.js";
import { KeyRing } from "../../src/oauth/keys.js";
import { NO_AUDIT } from "../../src/ops/audit.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { SIGNING_ALGORITHMS } from "../../src/tokens/claims.js";
import { verifyAccessToken } from "../../src/tokens/verify.js";

const ISSUER = "https://gw.example.test";
const stores: SqliteStore[] = [];
afterAll(async () => {
  for (const store of stores) await store.close();
});

const grant: Grant = {
  sid: "grant-1",
  client_id: "client-1",
  user: { sub: "42", login: "octo", name: "Octo Cat", provider: "github", groups: ["org/team"] },
  scope: ["mcp", "offline_access"],
  resources: ["https://gw.example.test/gw/notes/mcp"],
  created_at: 1_700_000_000,
  auth_time: 1_700_000_000,
};

describe.each(SIGNING_ALGORITHMS)("access tokens signed with node:crypto, %s", (alg) => {
  it("verify with jose against the JWKS and with the gateway's verifier, header alg/kid/typ", async () => {
    const store = new SqliteStore(join(mkdtempSync(join(tmpdir(), "mcpgw-jws-")), "s.db"));
    stores.push(store);
    const ring = await KeyRing.open(store, { alg, accessTtlSeconds: 600, encryptionSecret: "s".repeat(32) });
    const issuer = new TokenIssuer(ring, ISSUER, 600, NO_AUDIT);
    const { access_token: token } = await issuer.issue({
      grantType: "refresh_token",
      grant,
      scope: grant.scope,
      resources: grant.resources,
    });

    const kid = ring.signingKey().kid;
    expect(decodeProtectedHeader(token)).toEqual({ alg, kid, typ: "at+jwt" });

    // jose, as any resource server reading /jwks would.
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(ring.jwks()), {
      algorithms: [alg],
      typ: "at+jwt",
      issuer: ISSUER,
      audience: grant.resources[0],
    });
    expect(protectedHeader.kid).toBe(kid);
    expect(payload).toMatchObject({
      sub: "42",
      client_id: "client-1",
      sid: "grant-1",
      scope: "mcp offline_access",
      preferred_username: "octo",
      name: "Octo Cat",
      groups: ["org/team"],
      auth_time: 1_700_000_000,
    });
    expect((payload.exp as number) - (payload.iat as number)).toBe(600);

    // The gateway's own check (tokens/verify.ts), the one /verify and the proxy run.
    const claims = await verifyAccessToken(token, ring, ISSUER);
    expect(claims.jti).toBe(payload.jti);

    // Same header and payload bytes as jose would produce for the same claims.
    const joseToken = await new SignJWT(payload)
      .setProtectedHeader({ alg, kid, typ: "at+jwt" })
      .sign(ring.signingKey().key);
    expect(joseToken.split(".").slice(0, 2)).toEqual(token.split(".").slice(0, 2));

    // A signature from another key of the same algorithm does not verify.
    const otherStore = new SqliteStore(join(mkdtempSync(join(tmpdir(), "mcpgw-jws-")), "o.db"));
    stores.push(otherStore);
    const other = await KeyRing.open(otherStore, {
      alg,
      accessTtlSeconds: 600,
      encryptionSecret: "s".repeat(32),
    });
    const otherToken = other.accessTokenSigner().signJson(payload);
    const forged = `${token.split(".").slice(0, 2).join(".")}.${otherToken.split(".")[2]}`;
    const publicKey = await importJWK(ring.jwks().keys[0] as never, alg);
    await expect(jwtVerify(forged, publicKey)).rejects.toThrow();
    other.close();
    ring.close();
  });
});
