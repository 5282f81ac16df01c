/**
 * The OIDC provider against a real (small) OpenID provider on loopback: discovery, the code
 * flow with PKCE and nonce, id_token verification against the JWKS, userinfo, and refusals.
 */
import { createHash, randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, validateConfig } from "../../src/config/load.js";
import { createIdentityProvider } from "../../src/idp/create.js";
import { IdpError } from "../../src/idp/idp.js";
import { nonceFor, OidcIdentityProvider } from "../../src/idp/oidc.js";
import { type OidcTestProvider, startOidcProvider } from "../support/oidc-provider.js";

const REDIRECT = "http://127.0.0.1:18080/callback";
let op: OidcTestProvider;
const ADA = {
  sub: "u-1",
  preferred_username: "ada",
  name: "Ada Lovelace",
  email: "ada@example.com",
  email_verified: true,
};

beforeAll(async () => {
  op = await startOidcProvider();
});
afterAll(async () => {
  await op.stop();
});
afterEach(() => {
  op.user = { ...ADA };
  op.idTokenTamper = {};
  op.signWithUnknownKey = false;
  op.discoveryOverrides = {};
});

function oidcConfig(extra: Record<string, unknown> = { allowed_users: ["ada"] }) {
  return validateConfig({
    idp: {
      type: "oidc",
      oidc: { issuer: op.issuer, client_id: op.clientId, client_secret: op.clientSecret, ...extra },
    },
  }).idp.oidc;
}

async function login(p: OidcIdentityProvider, tamperVerifier = false) {
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const res = await fetch(
    await p.authorizationUrl({ state: "st", redirectUri: REDIRECT, codeChallenge: challenge }),
    {
      redirect: "manual",
    },
  );
  const back = new URL(res.headers.get("location") ?? "");
  expect(back.searchParams.get("state")).toBe("st");
  const code = back.searchParams.get("code") ?? "";
  expect(code).not.toBe("");
  return p.complete({
    code,
    redirectUri: REDIRECT,
    codeVerifier: tamperVerifier ? `${verifier}x` : verifier,
  });
}

async function refusal(fn: () => Promise<unknown>): Promise<string> {
  const err = await fn().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(IdpError);
  expect((err as Error).message).not.toContain(op.clientSecret);
  return (err as Error).message;
}

describe("OIDC login flow", () => {
  it("discovers the issuer and sends the browser there with PKCE, state and a nonce", async () => {
    const p = await OidcIdentityProvider.discover(oidcConfig());
    const url = new URL(await p.authorizationUrl({ state: "s", redirectUri: REDIRECT, codeChallenge: "ch" }));
    expect(`${url.origin}${url.pathname}`).toBe(`${op.issuer}/authorize`);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      response_type: "code",
      client_id: op.clientId,
      scope: "openid profile email",
      code_challenge: "ch",
      code_challenge_method: "S256",
      nonce: nonceFor("ch"),
    });
  });

  it("returns the verified identity with userinfo and groups", async () => {
    op.user = { ...ADA, groups: ["eng", "admins"] };
    const p = await OidcIdentityProvider.discover(oidcConfig({ allowed_teams: ["admins"] }));
    const user = await login(p);
    expect(user).toEqual({
      sub: "u-1",
      login: "ada",
      name: "Ada Lovelace",
      email: "ada@example.com",
      provider: "oidc",
      groups: ["eng", "admins"],
    });
    expect(p.checkAccess(user)).toEqual({ allowed: true });
    expect(op.requests).toContain("/userinfo");
  });

  it("drops an email the provider marks unverified", async () => {
    op.user = { ...ADA, email_verified: false };
    const user = await login(await OidcIdentityProvider.discover(oidcConfig()));
    expect(user.email).toBeUndefined();
  });

  it("authenticates with client_secret_post when that is all the provider offers", async () => {
    op.discoveryOverrides = { token_endpoint_auth_methods_supported: ["client_secret_post"] };
    const user = await login(await OidcIdentityProvider.discover(oidcConfig()));
    expect(user.login).toBe("ada");
  });

  it("admits nobody with an empty allowlist, everyone with *", async () => {
    const user = await login(await OidcIdentityProvider.discover(oidcConfig({})));
    expect((await OidcIdentityProvider.discover(oidcConfig({}))).checkAccess(user).allowed).toBe(false);
    expect(
      (await OidcIdentityProvider.discover(oidcConfig({ allowed_users: "*" }))).checkAccess(user).allowed,
    ).toBe(true);
    expect(
      (await OidcIdentityProvider.discover(oidcConfig({ allowed_users: "bob" }))).checkAccess(user).allowed,
    ).toBe(false);
  });
});

describe("OIDC refusals become IdpError", () => {
  it.each([
    ["another audience", () => (op.idTokenTamper = { aud: "someone-else" }), /audience|aud/],
    ["another issuer", () => (op.idTokenTamper = { iss: "https://evil.example" }), /iss/],
    ["another login's nonce", () => (op.idTokenTamper = { nonce: "stolen" }), /nonce mismatch/],
    ["an expired token", () => (op.idTokenTamper = { exp: Math.floor(Date.now() / 1000) - 3600 }), /exp/],
    ["a key not in the JWKS", () => (op.signWithUnknownKey = true), /signature|key/i],
  ])("an id_token with %s", async (_name, tamper, pattern) => {
    const p = await OidcIdentityProvider.discover(oidcConfig());
    tamper();
    expect(await refusal(() => login(p))).toMatch(pattern);
  });

  it("a wrong PKCE verifier, a wrong client secret, a replayed code", async () => {
    const p = await OidcIdentityProvider.discover(oidcConfig());
    expect(await refusal(() => login(p, true))).toContain("PKCE verification failed");
    const wrong = await OidcIdentityProvider.discover({ ...oidcConfig(), client_secret: "nope" });
    expect(await refusal(() => login(wrong))).toContain("client authentication failed");

    const verifier = randomBytes(32).toString("base64url");
    const challenge = createHash("sha256").update(verifier).digest("base64url");
    const res = await fetch(
      await p.authorizationUrl({ state: "s", redirectUri: REDIRECT, codeChallenge: challenge }),
      {
        redirect: "manual",
      },
    );
    const code = new URL(res.headers.get("location") ?? "").searchParams.get("code") ?? "";
    await p.complete({ code, redirectUri: REDIRECT, codeVerifier: verifier });
    expect(
      await refusal(() => p.complete({ code, redirectUri: REDIRECT, codeVerifier: verifier })),
    ).toContain("spent");
  });

  it("a discovery document for another issuer, or none at all", async () => {
    op.discoveryOverrides = { issuer: "https://evil.example" };
    await expect(OidcIdentityProvider.discover(oidcConfig())).rejects.toThrow(/another issuer/);
    await expect(
      OidcIdentityProvider.discover({ ...oidcConfig(), issuer: `${op.issuer}/nowhere` }),
    ).rejects.toThrow(IdpError);
  });

  it("missing issuer or client id is a config error naming the key", async () => {
    const cfg = validateConfig({ idp: { type: "oidc", oidc: { client_id: "c" } } });
    await expect(createIdentityProvider(cfg, undefined as never)).rejects.toThrow(ConfigError);
    await expect(createIdentityProvider(cfg, undefined as never)).rejects.toThrow(/idp\.oidc\.issuer/);
    const noClient = validateConfig({ idp: { type: "oidc", oidc: { issuer: op.issuer } } });
    await expect(createIdentityProvider(noClient, undefined as never)).rejects.toThrow(
      /idp\.oidc\.client_id/,
    );
  });
});
