/**
 * RFC 8414 metadata (and its OpenID-style alias): every advertised field is checked against
 * what the server actually does, so the document cannot promise more than is implemented.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { formPost, REDIRECT_URI, registerClient, tokenRequest } from "../support/oauth-client.js";
import {
  addLocalUser,
  addResourceServers,
  INTROSPECTION,
  obtainCode,
  obtainTokens,
  RESOURCE_SERVERS,
  SERVICES,
} from "./helpers.js";

let gw: RunningGateway;
let meta: Record<string, unknown>;

beforeAll(async () => {
  gw = await startFullGateway({ ...SERVICES, ...INTROSPECTION });
  await addResourceServers(gw);
  await addLocalUser(gw);
  const res = await fetch(`${gw.url}/.well-known/oauth-authorization-server`);
  expect(res.status).toBe(200);
  meta = (await res.json()) as Record<string, unknown>;
});
afterAll(async () => {
  await gw?.close({ wipe: true });
});

const str = (key: string) => meta[key] as string;

describe("authorization server metadata", () => {
  it("serves the same document at the OpenID-style alias, readable cross-origin", async () => {
    const res = await fetch(`${gw.url}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(await res.json()).toEqual(meta);
  });

  it("answers the machine endpoints cross-origin, refusals and preflights included, and the pages a person uses not", async () => {
    // A refusal (401 with its challenge) must be readable from a browser client too.
    const refused = await fetch(`${gw.url}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: "Basic Og==" },
      body: "grant_type=refresh_token&refresh_token=x",
    });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("access-control-allow-origin")).toBe("*");
    expect(refused.headers.get("access-control-expose-headers")).toBe("www-authenticate");
    const preflight = await fetch(`${gw.url}/token`, { method: "OPTIONS" });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
    expect((await fetch(`${gw.url}/jwks`)).headers.get("access-control-allow-origin")).toBe("*");
    const page = await fetch(`${gw.url}/login`);
    expect(page.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("advertises exactly the implemented protocol features", () => {
    expect(meta).toMatchObject({
      issuer: gw.url,
      response_types_supported: ["code"],
      response_modes_supported: ["query"],
      code_challenge_methods_supported: ["S256"],
      authorization_response_iss_parameter_supported: true,
      client_id_metadata_document_supported: true,
    });
    expect([...(meta.grant_types_supported as string[])].sort()).toEqual([
      "authorization_code",
      "refresh_token",
      "urn:ietf:params:oauth:grant-type:device_code",
    ]);
    expect([...(meta.token_endpoint_auth_methods_supported as string[])].sort()).toEqual([
      "client_secret_basic",
      "client_secret_post",
      "none",
      "private_key_jwt",
    ]);
    // private_key_jwt is exercised in chatgpt.test.ts; offline_access in offline-access.test.ts.
    expect(meta.token_endpoint_auth_signing_alg_values_supported).toContain("RS256");
    expect([...(meta.scopes_supported as string[])].sort()).toEqual([
      "files:read",
      "notes:read",
      "notes:write",
      "offline_access",
    ]);
    // Every endpoint lives under the issuer.
    for (const key of Object.keys(meta).filter((k) => k.endsWith("_endpoint") || k === "jwks_uri")) {
      expect(str(key).startsWith(`${gw.url}/`), key).toBe(true);
    }
    // Nothing else is advertised: a new field needs a check here that it works.
    expect(Object.keys(meta).sort()).toEqual(
      [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "registration_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        // Works: test/oauth/device-flow.test.ts, test/e2e/device-flow.test.ts.
        "device_authorization_endpoint",
        "response_types_supported",
        "response_modes_supported",
        "grant_types_supported",
        "token_endpoint_auth_methods_supported",
        "token_endpoint_auth_signing_alg_values_supported",
        "revocation_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_signing_alg_values_supported",
        "introspection_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_signing_alg_values_supported",
        "code_challenge_methods_supported",
        "scopes_supported",
        "client_id_metadata_document_supported",
        "authorization_response_iss_parameter_supported",
        "service_documentation",
      ].sort(),
    );
  });

  it("has a working jwks_uri whose keys sign the access tokens", async () => {
    const jwks = (await (await fetch(str("jwks_uri"))).json()) as {
      keys: Array<{ kid: string; alg?: string; d?: string }>;
    };
    expect(jwks.keys.length).toBeGreaterThan(0);
    for (const k of jwks.keys) expect(k.d, "no private key material").toBeUndefined();
  });

  it("has working registration, authorization and token endpoints, with each advertised client auth method", async () => {
    const post = await registerClient(gw.url, { token_endpoint_auth_method: "client_secret_post" });
    expect(str("registration_endpoint")).toBe(`${gw.url}/register`);
    const code = await obtainCode(gw, post);
    expect(str("authorization_endpoint")).toBe(`${gw.url}/authorize`);
    const res = await tokenRequest(gw.url, {
      grant_type: "authorization_code",
      code: code.code,
      code_verifier: code.verifier,
      redirect_uri: REDIRECT_URI,
      client_id: post.client_id,
      client_secret: post.client_secret as string,
    });
    expect(str("token_endpoint")).toBe(`${gw.url}/token`);
    expect(res.status).toBe(200);
    // client_secret_basic (through obtainTokens) and none.
    await obtainTokens(
      gw,
      await registerClient(gw.url, { token_endpoint_auth_method: "client_secret_basic" }),
    );
    await obtainTokens(gw, await registerClient(gw.url, { token_endpoint_auth_method: "none" }));
  });

  it("has working revocation and introspection endpoints with the advertised auth methods", async () => {
    expect(meta.introspection_endpoint_auth_methods_supported).toEqual([
      "client_secret_basic",
      "client_secret_post",
      "private_key_jwt",
    ]);
    const rs = RESOURCE_SERVERS.post;
    const publicClient = await registerClient(gw.url);
    const tokens = await obtainTokens(gw, publicClient);

    const introspect = await formPost(str("introspection_endpoint"), {
      token: tokens.access_token,
      client_id: rs.id,
      client_secret: rs.secret,
    });
    expect(introspect.status).toBe(200);
    expect(introspect.body.active).toBe(true);
    // "none" is not advertised for introspection, and is refused.
    const anonymous = await formPost(str("introspection_endpoint"), {
      token: tokens.access_token,
      client_id: publicClient.client_id,
    });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error).toBe("invalid_client");

    // Revocation with "none" (advertised) works for the public client's own token.
    expect(meta.revocation_endpoint_auth_methods_supported).toContain("none");
    const revoke = await formPost(str("revocation_endpoint"), {
      token: tokens.refresh_token,
      client_id: publicClient.client_id,
    });
    expect(revoke.status).toBe(200);
    const after = await formPost(str("introspection_endpoint"), {
      token: tokens.access_token,
      client_id: rs.id,
      client_secret: rs.secret,
    });
    expect(after.body).toEqual({ active: false });
  });
});
