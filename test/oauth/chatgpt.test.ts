/**
 * What ChatGPT sends: a Client ID Metadata Document declaring `private_key_jwt` with an RS256
 * `jwks_uri` and one redirect URI per connector, then RFC 7523 client assertions at /token
 * (and /revoke, /introspect). Every check of the assertion is shown refusing, over real HTTP
 * against the whole gateway, with the document and its keys served by a loopback web server
 * as ChatGPT serves them from chatgpt.com.
 */
import { randomUUID } from "node:crypto";
import {
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
  UnsecuredJWT,
} from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DocumentServer, startDocumentServer } from "../support/documents.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import {
  authorizeUrl,
  authorizeWithLocalLogin,
  Browser,
  formPost,
  pkcePair,
  registerClient,
  tokenRequest,
} from "../support/oauth-client.js";
import { addLocalUser, LOGIN, SERVICES } from "./helpers.js";

const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
type Key = CryptoKey;

interface Signer {
  kid: string;
  alg: string;
  privateKey: Key;
  publicJwk: JWK;
}

async function signer(alg: "RS256" | "ES256", kid: string): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

const now = () => Math.floor(Date.now() / 1000);

/** A client assertion as ChatGPT makes one; `claims` replace (or, as undefined, remove) its claims. */
async function assertion(
  key: Signer,
  clientId: string,
  aud: string,
  claims: Record<string, unknown> = {},
): Promise<string> {
  const payload: Record<string, unknown> = {
    iss: clientId,
    sub: clientId,
    aud,
    jti: randomUUID(),
    iat: now(),
    exp: now() + 60,
    ...claims,
  };
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
  return new SignJWT(payload as JWTPayload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" })
    .sign(key.privateKey);
}

describe("ChatGPT: metadata documents with private_key_jwt", () => {
  let docs: DocumentServer;
  let gw: RunningGateway;
  let rsa: Signer;
  let clientId: string;
  const connectors = [
    "https://chatgpt.com/connector/oauth/kDmjx77UnKOM",
    "https://chatgpt.com/connector/oauth/tU1UVEq8rRTK",
  ];
  const jwksPath = "/oauth/jwks.json";

  beforeAll(async () => {
    docs = await startDocumentServer();
    gw = await startFullGateway({ ...SERVICES, cimd: { allow_private_addresses: true } });
    await addLocalUser(gw);
    rsa = await signer("RS256", "cimd-20260428030119");
    docs.put(jwksPath, { keys: [rsa.publicJwk] }, { "cache-control": "max-age=300" });
    clientId = `${docs.base}/oauth/client.json`;
    // ChatGPT's document, with its own URLs swapped for the loopback server's.
    docs.put(
      "/oauth/client.json",
      {
        client_id: clientId,
        client_uri: "https://chatgpt.com/",
        redirect_uris: connectors,
        token_endpoint_auth_method: "private_key_jwt",
        token_endpoint_auth_methods_supported: ["none", "private_key_jwt"],
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        client_name: "ChatGPT",
        logo_uri: "https://persistent.oaistatic.com/sonic/misc/openai-logo.png",
        token_endpoint_auth_signing_alg: "RS256",
        jwks_uri: `${docs.base}${jwksPath}`,
      },
      { "cache-control": "max-age=300" },
    );
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
    await docs?.close();
  });

  const tokenUrl = () => `${gw.url}/token`;

  /** A code for the ChatGPT client, returned to one connector's redirect URI. */
  async function code(redirectUri = connectors[0] as string) {
    const { verifier, challenge } = pkcePair();
    const back = await authorizeWithLocalLogin(
      gw.url,
      new Browser(),
      { client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge },
      LOGIN,
    );
    expect(`${back.origin}${back.pathname}`).toBe(redirectUri);
    expect(back.searchParams.get("iss")).toBe(gw.url);
    return { code: back.searchParams.get("code") as string, verifier, redirectUri };
  }

  const redeem = (c: Awaited<ReturnType<typeof code>>, auth: Record<string, string>) =>
    tokenRequest(gw.url, {
      grant_type: "authorization_code",
      code: c.code,
      code_verifier: c.verifier,
      redirect_uri: c.redirectUri,
      ...auth,
    });

  const withAssertion = async (aud = tokenUrl(), claims: Record<string, unknown> = {}) => ({
    client_id: clientId,
    client_assertion_type: JWT_BEARER,
    client_assertion: await assertion(rsa, clientId, aud, claims),
  });

  it("advertises private_key_jwt and its signing algorithms at every endpoint a client authenticates", async () => {
    const meta = (await (await fetch(`${gw.url}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      string[]
    >;
    for (const endpoint of ["token", "revocation", "introspection"]) {
      expect(meta[`${endpoint}_endpoint_auth_methods_supported`], endpoint).toContain("private_key_jwt");
      expect(meta[`${endpoint}_endpoint_auth_signing_alg_values_supported`], endpoint).toEqual(
        expect.arrayContaining(["RS256", "ES256", "PS256", "EdDSA"]),
      );
      expect(meta[`${endpoint}_endpoint_auth_signing_alg_values_supported`]).not.toContain("HS256");
      expect(meta[`${endpoint}_endpoint_auth_signing_alg_values_supported`]).not.toContain("none");
    }
  });

  it("redeems codes for each connector's redirect URI with assertions to the token endpoint or the issuer, and refreshes", async () => {
    const before = docs.fetches(jwksPath);
    for (const redirectUri of connectors) {
      const first = await redeem(await code(redirectUri), await withAssertion(tokenUrl()));
      expect(first.status, JSON.stringify(first.body)).toBe(200);
      expect(first.body.refresh_token).toBeTruthy();
      // The issuer identifier is the audience RFC 7523bis asks for; the token endpoint is the classic one.
      const refreshed = await tokenRequest(gw.url, {
        grant_type: "refresh_token",
        refresh_token: first.body.refresh_token as string,
        ...(await withAssertion(gw.url)),
      });
      expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    }
    // The key set was fetched once and then served from cache (its max-age).
    expect(docs.fetches(jwksPath) - before).toBeLessThanOrEqual(1);
  });

  it("takes the client from the assertion when the form has no client_id (RFC 7521 §4.2)", async () => {
    const { client_id: _omitted, ...auth } = await withAssertion();
    const res = await redeem(await code(), auth);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  });

  it("refuses every assertion that is not a fresh one by the client's key for this server, and spends no code doing so", async () => {
    const other = await signer("RS256", rsa.kid);
    const ec = await signer("ES256", "ec-1");
    const unsigned = new UnsecuredJWT({
      iss: clientId,
      sub: clientId,
      aud: tokenUrl(),
      jti: randomUUID(),
      exp: now() + 60,
    }).encode();
    const hmac = await new SignJWT({ iss: clientId, sub: clientId, aud: tokenUrl(), jti: randomUUID() })
      .setProtectedHeader({ alg: "HS256", kid: rsa.kid })
      .setExpirationTime("1m")
      .sign(new TextEncoder().encode("a shared secret the client never had"));
    const form = (value: string) => ({
      client_id: clientId,
      client_assertion_type: JWT_BEARER,
      client_assertion: value,
    });

    const cases: Array<[string, Record<string, string>, RegExp]> = [
      ["another key with the client's kid", form(await assertion(other, clientId, tokenUrl())), /signature/],
      [
        "iss not the client",
        await withAssertion(tokenUrl(), { iss: "https://evil.example/client.json" }),
        /iss/,
      ],
      ["sub not the client", await withAssertion(tokenUrl(), { sub: "someone-else" }), /sub/],
      ["aud another server", await withAssertion("https://other-as.example/token"), /aud/],
      ["expired", await withAssertion(tokenUrl(), { exp: now() - 120, iat: now() - 180 }), /expired/],
      ["no exp", await withAssertion(tokenUrl(), { exp: undefined }), /exp/],
      ["exp an hour away", await withAssertion(tokenUrl(), { exp: now() + 3600 }), /exp is more than/],
      ["no jti", await withAssertion(tokenUrl(), { jti: undefined }), /jti/],
      ["alg none", form(unsigned), /algorithm none/],
      ["alg HS256 (a public key used as an HMAC secret)", form(hmac), /algorithm HS256/],
      ["ES256 when the document says RS256", form(await assertion(ec, clientId, tokenUrl())), /RS256/],
      ["not a JWT", form("not.a.jwt"), /client assertion/],
      ["no assertion (a public client's request)", { client_id: clientId }, /private_key_jwt, not none/],
      [
        "a client secret instead",
        { client_id: clientId, client_secret: "guess" },
        /private_key_jwt, not client_secret_post/,
      ],
      [
        "another assertion type",
        { ...form(await assertion(rsa, clientId, tokenUrl())), client_assertion_type: "urn:example:saml" },
        /client_assertion_type/,
      ],
    ];
    const c = await code();
    for (const [name, auth, reason] of cases) {
      const res = await redeem(c, auth);
      expect(`${name}: ${res.status} ${res.body.error}`).toBe(`${name}: 401 invalid_client`);
      expect(res.body.error_description, name).toMatch(reason);
    }
    // An assertion without its type, or with a secret beside it, is a malformed request.
    const half = await redeem(c, {
      client_id: clientId,
      client_assertion: await assertion(rsa, clientId, tokenUrl()),
    });
    expect(`${half.status} ${half.body.error}`).toBe("400 invalid_request");
    const both = await redeem(c, { ...(await withAssertion()), client_secret: "x" });
    expect(`${both.status} ${both.body.error}`).toBe("400 invalid_request");
    // None of that spent the code.
    const good = await redeem(c, await withAssertion());
    expect(good.status, JSON.stringify(good.body)).toBe(200);
  });

  it("accepts each assertion once: a replayed jti is refused", async () => {
    const auth = await withAssertion();
    const first = await redeem(await code(), auth);
    expect(first.status).toBe(200);
    const replay = await tokenRequest(gw.url, {
      grant_type: "refresh_token",
      refresh_token: first.body.refresh_token as string,
      ...auth,
    });
    expect(`${replay.status} ${replay.body.error}`).toBe("401 invalid_client");
    expect(replay.body.error_description).toMatch(/already used/);
  });

  it("follows a key rotation: an unknown kid refetches jwks_uri", async () => {
    const rotatedPath = "/rotating/jwks.json";
    const oldKey = await signer("RS256", "old");
    const newKey = await signer("RS256", "new");
    const id = docs.put("/rotating/client.json", {
      client_id: `${docs.base}/rotating/client.json`,
      client_name: "ChatGPT",
      redirect_uris: [connectors[0]],
      token_endpoint_auth_method: "private_key_jwt",
      jwks_uri: `${docs.base}${rotatedPath}`,
    });
    docs.put(rotatedPath, { keys: [oldKey.publicJwk] }, { "cache-control": "max-age=3600" });
    const redeemAs = async (key: Signer) => {
      const { verifier, challenge } = pkcePair();
      const back = await authorizeWithLocalLogin(
        gw.url,
        new Browser(),
        { client_id: id, redirect_uri: connectors[0], code_challenge: challenge },
        LOGIN,
      );
      return tokenRequest(gw.url, {
        grant_type: "authorization_code",
        code: back.searchParams.get("code") as string,
        code_verifier: verifier,
        redirect_uri: connectors[0] as string,
        client_id: id,
        client_assertion_type: JWT_BEARER,
        client_assertion: await assertion(key, id, tokenUrl()),
      });
    };
    expect((await redeemAs(oldKey)).status).toBe(200);
    docs.put(rotatedPath, { keys: [newKey.publicJwk] }, { "cache-control": "max-age=3600" });
    const fetched = docs.fetches(rotatedPath);
    expect((await redeemAs(newKey)).status).toBe(200);
    expect(docs.fetches(rotatedPath)).toBe(fetched + 1);
    // The old key is gone from the set: its assertions no longer verify.
    const retired = await redeemAs(oldKey);
    expect(`${retired.status} ${retired.body.error}`).toBe("401 invalid_client");
  });

  it("accepts keys given inline as jwks (ES256) in the document", async () => {
    const ec = await signer("ES256", "inline-1");
    const id = docs.put("/inline/client.json", {
      client_id: `${docs.base}/inline/client.json`,
      client_name: "Inline keys",
      redirect_uris: [connectors[0]],
      token_endpoint_auth_method: "private_key_jwt",
      jwks: { keys: [ec.publicJwk] },
    });
    const { verifier, challenge } = pkcePair();
    const back = await authorizeWithLocalLogin(
      gw.url,
      new Browser(),
      { client_id: id, redirect_uri: connectors[0], code_challenge: challenge },
      LOGIN,
    );
    const res = await tokenRequest(gw.url, {
      grant_type: "authorization_code",
      code: back.searchParams.get("code") as string,
      code_verifier: verifier,
      redirect_uri: connectors[0] as string,
      client_id: id,
      client_assertion_type: JWT_BEARER,
      client_assertion: await assertion(ec, id, gw.url),
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  });

  it("authenticates the client by assertion at /introspect and /revoke too (aud: that endpoint)", async () => {
    const tokens = await redeem(await code(), await withAssertion());
    const access = tokens.body.access_token as string;
    const introspect = async () =>
      formPost(`${gw.url}/introspect`, { token: access, ...(await withAssertion(`${gw.url}/introspect`)) });
    const alive = await introspect();
    expect(alive.status, JSON.stringify(alive.body)).toBe(200);
    expect(alive.body).toMatchObject({ active: true, client_id: clientId });
    const revoked = await formPost(`${gw.url}/revoke`, {
      token: tokens.body.refresh_token as string,
      ...(await withAssertion(`${gw.url}/revoke`)),
    });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    expect((await introspect()).body).toEqual({ active: false });
    // Without the assertion, introspection refuses the client.
    const anonymous = await formPost(`${gw.url}/introspect`, { token: access, client_id: clientId });
    expect(`${anonymous.status} ${anonymous.body.error}`).toBe("401 invalid_client");
  });

  it.each([
    ["private_key_jwt without keys", {}, /jwks/],
    [
      "a private key in jwks",
      { jwks: { keys: [{ kty: "EC", crv: "P-256", x: "x", y: "y", d: "secret" }] } },
      /private key material/,
    ],
    [
      "both jwks and jwks_uri",
      { jwks: { keys: [{ kty: "RSA", n: "n", e: "AQAB" }] }, jwks_uri: "https://a.example/j" },
      /not both/,
    ],
    ["a jwks_uri that is not https", { jwks_uri: "http://keys.example/jwks.json" }, /https/],
    [
      "a signing alg outside the allow-list",
      { jwks_uri: "https://a.example/j", token_endpoint_auth_signing_alg: "HS256" },
      /token_endpoint_auth_signing_alg/,
    ],
  ])("refuses a document with %s at /authorize, saying why", async (_name, extra, reason) => {
    const path = `/bad/${randomUUID()}.json`;
    const id = docs.put(path, {
      client_id: `${docs.base}${path}`,
      client_name: "Bad",
      redirect_uris: [connectors[0]],
      token_endpoint_auth_method: "private_key_jwt",
      ...extra,
    });
    const res = await fetch(
      authorizeUrl(gw.url, {
        client_id: id,
        redirect_uri: connectors[0],
        code_challenge: pkcePair().challenge,
      }),
      { redirect: "manual" },
    );
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(reason);
  });
});

describe("private_key_jwt through dynamic registration, and the SSRF guard on jwks_uri", () => {
  let strict: RunningGateway;
  beforeAll(async () => {
    strict = await startFullGateway(SERVICES);
    await addLocalUser(strict);
  });
  afterAll(async () => {
    await strict?.close({ wipe: true });
  });

  async function codeFor(clientId: string) {
    const { verifier, challenge } = pkcePair();
    const back = await authorizeWithLocalLogin(
      strict.url,
      new Browser(),
      { client_id: clientId, code_challenge: challenge },
      LOGIN,
    );
    return { code: back.searchParams.get("code") as string, verifier };
  }

  /** A fresh code for `clientId`, redeemed with an assertion `key` signs for the token endpoint. */
  async function redeemWithAssertion(clientId: string, key: Parameters<typeof assertion>[0]) {
    const c = await codeFor(clientId);
    return tokenRequest(strict.url, {
      grant_type: "authorization_code",
      code: c.code,
      code_verifier: c.verifier,
      redirect_uri: "http://127.0.0.1:9999/callback",
      client_assertion_type: JWT_BEARER,
      client_assertion: await assertion(key, clientId, `${strict.url}/token`),
    });
  }

  it("registers a private_key_jwt client with inline jwks (no secret issued) and redeems with its assertion", async () => {
    const key = await signer("ES256", "dcr-1");
    const client = await registerClient(strict.url, {
      token_endpoint_auth_method: "private_key_jwt",
      jwks: { keys: [key.publicJwk] },
      token_endpoint_auth_signing_alg: "ES256",
    });
    expect(client.client_secret).toBeUndefined();
    expect(client).toMatchObject({
      token_endpoint_auth_method: "private_key_jwt",
      application_type: "native",
    });
    const res = await redeemWithAssertion(client.client_id, key);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  });

  it.each([
    ["a loopback address", "https://127.0.0.1:9/jwks.json", /loopback/],
    ["a name that resolves to loopback", "https://localhost:9/jwks.json", /loopback/],
    ["the cloud metadata address", "https://169.254.169.254/jwks.json", /link-local/],
  ])("never fetches a jwks_uri on %s: the assertion is refused", async (_name, jwksUri, reason) => {
    const key = await signer("RS256", "ssrf");
    const client = await registerClient(strict.url, {
      token_endpoint_auth_method: "private_key_jwt",
      jwks_uri: jwksUri,
    });
    const res = await redeemWithAssertion(client.client_id, key);
    expect(`${res.status} ${res.body.error}`).toBe("401 invalid_client");
    expect(res.body.error_description).toMatch(reason);
  });
});
