/**
 * Every way a request can be refused before it reaches the upstream, with the exact status and
 * WWW-Authenticate an MCP client relies on.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { firstRefusal, postInitialize } from "../support/mcp-http.js";
import { foreignKey, unsignedToken } from "../support/mint.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";

let upstream: TestUpstream;
let gw: TestGateway;
let alphaUrl: string;
let alphaPrm: string;

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway({
    tokens: { revocation_cache: 1 },
    services: {
      alpha: { url: upstream.url },
      beta: { url: upstream.url },
      team: { url: upstream.url, allowed_users: ["bob"], allowed_orgs: ["acme"] },
      scoped: { url: upstream.url, scopes: ["mcp:tools", "mcp:admin"] },
      off: { url: upstream.url, enabled: false },
    },
  });
  alphaUrl = `${gw.url}/alpha/mcp`;
  alphaPrm = `${gw.url}/.well-known/oauth-protected-resource/alpha/mcp`;
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("401: no usable token", () => {
  it("no token: challenge names the metadata, no error code", async () => {
    const res = await postInitialize(alphaUrl);
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toBe(`Bearer resource_metadata="${alphaPrm}"`);
    expect(JSON.parse(res.text)).toMatchObject({ jsonrpc: "2.0", error: { code: -32000 }, id: null });
  });

  it("a service with scopes advertises them in the challenge", async () => {
    const res = await postInitialize(`${gw.url}/scoped/mcp`);
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toBe(
      `Bearer resource_metadata="${gw.url}/.well-known/oauth-protected-resource/scoped/mcp", scope="mcp:tools mcp:admin"`,
    );
  });

  it.each([
    ["not a bearer scheme", "Basic dXNlcjpwYXNz", "The Authorization header is not a Bearer token"],
    ["malformed token", "Bearer not-a-jwt", "The access token is malformed"],
    ["three garbage parts", "Bearer aaa.bbb.ccc", "The access token is malformed"],
  ])("%s", async (_name, authorization, description) => {
    const res = await postInitialize(alphaUrl, { authorization });
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toBe(
      `Bearer resource_metadata="${alphaPrm}", error="invalid_token", error_description="${description}"`,
    );
  });

  it("alg none is refused", async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = unsignedToken({
      iss: gw.config.public_url,
      aud: `${gw.config.public_url}/alpha/mcp`,
      sub: "u",
      client_id: "c",
      jti: "j",
      sid: "s",
      iat: now,
      exp: now + 60,
    });
    const before = upstream.requests.length;
    const res = await postInitialize(alphaUrl, bearer(token));
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toBe(
      `Bearer resource_metadata="${alphaPrm}", error="invalid_token", error_description="The access token's algorithm is not allowed"`,
    );
    expect(upstream.requests).toHaveLength(before);
  });

  it("a key not in the ring is refused", async () => {
    const token = await gw.token("alpha", {}, { signWith: await foreignKey() });
    const res = await postInitialize(alphaUrl, bearer(token));
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toContain(
      'error_description="The access token was not signed by a key of this gateway"',
    );
  });

  it("a foreign key claiming the ring's kid fails the signature check", async () => {
    const token = await gw.token("alpha", {}, { signWith: await foreignKey(gw.keys.signingKey().kid) });
    const res = await postInitialize(alphaUrl, bearer(token));
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toContain(
      'error_description="The access token\'s signature is invalid"',
    );
  });

  it("a forged token ending in a cached token's signature is refused, and the real one still opens", async () => {
    // The verification cache finds entries by a token's last characters (token-check.ts).
    const real = await gw.token("team", { preferred_username: "bob" });
    expect((await postInitialize(`${gw.url}/team/mcp`, bearer(real))).status).toBe(200);
    const other = await gw.token("team", { preferred_username: "mallory", groups: ["acme"] });
    const forged = `${other.slice(0, other.lastIndexOf("."))}${real.slice(real.lastIndexOf("."))}`;
    for (let i = 0; i < 2; i++) {
      const res = await postInitialize(`${gw.url}/team/mcp`, bearer(forged));
      expect(res.status).toBe(401);
      expect(res.headers["www-authenticate"]).toContain(
        'error_description="The access token\'s signature is invalid"',
      );
    }
    expect((await postInitialize(`${gw.url}/team/mcp`, bearer(real))).status).toBe(200);
  });

  it("expired", async () => {
    const token = await gw.token("alpha", {}, { ttl: -60 });
    const res = await postInitialize(alphaUrl, bearer(token));
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toContain('error_description="The access token expired"');
  });

  it("wrong typ (an ID token is not an access token)", async () => {
    const token = await gw.token("alpha", {}, { typ: "JWT" });
    const res = await postInitialize(alphaUrl, bearer(token));
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toContain('error_description="The token is not an access token"');
  });

  it("another issuer", async () => {
    const token = await gw.token("alpha", { iss: "https://evil.example" });
    const res = await postInitialize(alphaUrl, bearer(token));
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toContain("issued by someone else");
  });

  it("a token for service beta does not open alpha", async () => {
    const token = await gw.token("beta");
    const res = await postInitialize(alphaUrl, bearer(token));
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toBe(
      `Bearer resource_metadata="${alphaPrm}", error="invalid_token", error_description="The access token is not meant for the service alpha"`,
    );
    const ok = await postInitialize(`${gw.url}/beta/mcp`, bearer(token));
    expect(ok.status).toBe(200);
  });

  it("a gateway-wide token is refused unless accept_gateway_audience is on", async () => {
    const token = await gw.token("alpha", { aud: gw.config.public_url });
    expect((await postInitialize(alphaUrl, bearer(token))).status).toBe(401);
  });

  it("revoked: refused within the revocation cache bound", async () => {
    const token = await gw.token("alpha", { sid: "grant-to-revoke" });
    expect((await postInitialize(alphaUrl, bearer(token))).status).toBe(200);
    await gw.revocations.revokeGrant("grant-to-revoke");
    const res = await firstRefusal(
      () => postInitialize(alphaUrl, bearer(token)),
      gw.config.tokens.revocation_cache * 1000 + 200,
    );
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toContain(
      'error_description="The access token has been revoked"',
    );
  });
});

describe("403: valid token, not enough", () => {
  it("user not in the service policy", async () => {
    const token = await gw.token("team", { preferred_username: "mallory", groups: ["other-org"] });
    const res = await postInitialize(`${gw.url}/team/mcp`, bearer(token));
    expect(res.status).toBe(403);
    expect(res.headers["www-authenticate"]).toBe(
      `Bearer resource_metadata="${gw.url}/.well-known/oauth-protected-resource/team/mcp", error="access_denied", error_description="mallory is not on the list of allowed users and not a member of an allowed organisation of the service team"`,
    );
  });

  it("policy admits by user and by org", async () => {
    const byUser = await gw.token("team", { preferred_username: "bob" });
    expect((await postInitialize(`${gw.url}/team/mcp`, bearer(byUser))).status).toBe(200);
    const byOrg = await gw.token("team", { preferred_username: "carol", groups: ["ACME"] });
    expect((await postInitialize(`${gw.url}/team/mcp`, bearer(byOrg))).status).toBe(200);
  });

  it("missing scope: insufficient_scope with the scopes needed", async () => {
    const token = await gw.token("scoped", { scope: "mcp:tools" });
    const res = await postInitialize(`${gw.url}/scoped/mcp`, bearer(token));
    expect(res.status).toBe(403);
    expect(res.headers["www-authenticate"]).toBe(
      `Bearer resource_metadata="${gw.url}/.well-known/oauth-protected-resource/scoped/mcp", scope="mcp:tools mcp:admin", error="insufficient_scope", error_description="The service scoped needs the scope mcp:admin"`,
    );
    const full = await gw.token("scoped", { scope: "mcp:admin mcp:tools" });
    expect((await postInitialize(`${gw.url}/scoped/mcp`, bearer(full))).status).toBe(200);
  });
});

describe("routing", () => {
  it("unknown and disabled services are 404 with a JSON-RPC error", async () => {
    for (const name of ["nope", "off"]) {
      const res = await postInitialize(`${gw.url}/${name}/mcp`, bearer(await gw.token(name)));
      expect(res.status).toBe(404);
      expect(JSON.parse(res.text)).toEqual({
        jsonrpc: "2.0",
        error: { code: -32000, message: "No such service" },
        id: null,
      });
    }
  });

  it("an Mcp-Session-Id alone never authenticates", async () => {
    const token = await gw.token("alpha");
    const init = await postInitialize(alphaUrl, bearer(token));
    const sid = init.headers["mcp-session-id"] as string;
    expect(sid).toBeTruthy();
    const res = await postInitialize(alphaUrl, { "mcp-session-id": sid });
    expect(res.status).toBe(401);
  });
});
