/**
 * Dynamic registration (RFC 7591) and its management (RFC 7592) over real HTTP: redirect URI
 * rules, malformed and oversized bodies, the registration access token, and the two policies
 * (registration off, initial access token). DELETE revokes the client's tokens on both stores.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { REDIRECT_URI, registerClient } from "../support/oauth-client.js";
import { startRedis, type TestRedis } from "../support/redis.js";
import {
  addLocalUser,
  addResourceServers,
  INTROSPECTION,
  isActive,
  obtainTokens,
  rawPost,
  refresh,
  SERVICES,
  STORES,
} from "./helpers.js";

const json = { "content-type": "application/json" };

async function manage(
  url: string,
  method: "GET" | "PUT" | "DELETE",
  token: string | undefined,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown>; challenge: string | null }> {
  const headers: Record<string, string> = { connection: "close" };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    challenge: res.headers.get("www-authenticate"),
  };
}

describe("POST /register refusals", () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startFullGateway(SERVICES);
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
  });

  const register = (metadata: Record<string, unknown>) =>
    rawPost(
      `${gw.url}/register`,
      JSON.stringify({ client_name: "x", token_endpoint_auth_method: "none", ...metadata }),
      json,
    );

  it("refuses http redirect URIs that are not loopback, fragments and dangerous schemes with invalid_redirect_uri", async () => {
    for (const uri of [
      "http://localhost.evil.com/callback",
      "http://127.0.0.1.evil.com/cb",
      "http://example.com/callback",
      "https://app.example/cb#frag",
      "javascript:alert(1)",
      "not a uri",
    ]) {
      const res = await register({ redirect_uris: [uri] });
      expect(res.status, uri).toBe(400);
      expect(res.body.error, uri).toBe("invalid_redirect_uri");
    }
    const none = await register({ redirect_uris: [] });
    expect(none.status).toBe(400);
    expect(none.body.error).toBe("invalid_redirect_uri");
  });

  it("accepts https, loopback http and private-use schemes; gives a secret only to confidential clients", async () => {
    const res = await register({
      redirect_uris: [
        "https://app.example/cb",
        "http://localhost:3000/cb",
        "http://[::1]/cb",
        "com.example.app:/oauth",
      ],
    });
    expect(res.status).toBe(201);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.body.client_secret).toBeUndefined();
    expect(res.body.client_secret_expires_at).toBeGreaterThan(Date.now() / 1000);
    const confidential = await register({
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: "client_secret_post",
    });
    expect(confidential.status).toBe(201);
    expect(typeof confidential.body.client_secret).toBe("string");
  });

  it("answers malformed JSON, a non-object and a form body with 400 invalid_client_metadata", async () => {
    for (const [body, type] of [
      ['{"redirect_uris": [', "application/json"],
      ["[1, 2]", "application/json"],
      ['"text"', "application/json"],
      ["redirect_uris=http%3A%2F%2F127.0.0.1%2Fcb", "application/x-www-form-urlencoded"],
    ] as const) {
      const res = await rawPost(`${gw.url}/register`, body, { "content-type": type });
      expect(res.status, body).toBe(400);
      expect(res.body.error, body).toBe("invalid_client_metadata");
    }
    const bad = await register({
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: "private_key_jwt",
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe("invalid_client_metadata");
    const grants = await register({ redirect_uris: [REDIRECT_URI], grant_types: ["client_credentials"] });
    expect(grants.status).toBe(400);
    expect(grants.body.error).toBe("invalid_client_metadata");
  });

  it("answers a body over 64 KiB with 413 and OAuth JSON, on /register and /register/{id}", async () => {
    const big = JSON.stringify({
      redirect_uris: [REDIRECT_URI],
      client_name: "x",
      padding: "a".repeat(70 * 1024),
    });
    const res = await rawPost(`${gw.url}/register`, big, json);
    expect(res.status).toBe(413);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.body.error).toBe("invalid_client_metadata");

    const client = await registerClient(gw.url);
    const put = await fetch(client.registration_client_uri, {
      method: "PUT",
      headers: { ...json, authorization: `Bearer ${client.registration_access_token}`, connection: "close" },
      body: big,
    });
    expect(put.status).toBe(413);
    expect(((await put.json()) as { error: string }).error).toBe("invalid_client_metadata");
  });
});

describe.each(STORES)("RFC 7592 client management on $name", ({ redis: useRedis }) => {
  let redis: TestRedis | undefined;
  let gw: RunningGateway;
  beforeAll(async () => {
    if (useRedis) {
      redis = await startRedis();
      if (!redis) return;
    }
    gw = await startFullGateway({ ...SERVICES, ...INTROSPECTION }, { redisUrl: redis?.url });
    await addResourceServers(gw);
    await addLocalUser(gw);
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
    await redis?.stop();
  });

  it("answers 401 without a token, 403 with another client's token, 404 for an unknown client", async (ctx) => {
    if (useRedis && !redis) ctx.skip();
    const a = await registerClient(gw.url);
    const b = await registerClient(gw.url);
    for (const method of ["GET", "PUT", "DELETE"] as const) {
      const body = method === "PUT" ? { client_id: a.client_id, redirect_uris: [REDIRECT_URI] } : undefined;
      const none = await manage(a.registration_client_uri, method, undefined, body);
      expect(none.status, method).toBe(401);
      expect(none.body.error, method).toBe("invalid_token");
      expect(none.challenge, method).toMatch(/^Bearer /);
      const other = await manage(a.registration_client_uri, method, b.registration_access_token, body);
      expect(other.status, method).toBe(403);
      expect(other.challenge, method).toContain('error="invalid_token"');
      const unknown = await manage(
        `${gw.url}/register/00000000-0000-4000-8000-000000000000`,
        method,
        a.registration_access_token,
        body,
      );
      expect(unknown.status, method).toBe(404);
    }
    // None of that changed the client.
    expect((await manage(a.registration_client_uri, "GET", a.registration_access_token)).status).toBe(200);
  });

  it("reads, updates and deletes a client; DELETE revokes its tokens", async (ctx) => {
    if (useRedis && !redis) ctx.skip();
    const client = await registerClient(gw.url, {
      token_endpoint_auth_method: "client_secret_basic",
      client_name: "Before",
    });
    const token = client.registration_access_token;

    const read = await manage(client.registration_client_uri, "GET", token);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({
      client_id: client.client_id,
      client_name: "Before",
      redirect_uris: [REDIRECT_URI],
    });
    expect(read.body.client_secret).toBeUndefined();
    expect(read.body.registration_access_token).toBeUndefined();
    expect(read.body.registration_client_uri).toBe(client.registration_client_uri);

    const put = await manage(client.registration_client_uri, "PUT", token, {
      client_id: client.client_id,
      client_name: "After",
      redirect_uris: [REDIRECT_URI, "http://127.0.0.1:9999/second"],
      token_endpoint_auth_method: "client_secret_basic",
    });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({
      client_name: "After",
      redirect_uris: [REDIRECT_URI, "http://127.0.0.1:9999/second"],
    });
    expect((await manage(client.registration_client_uri, "GET", token)).body.client_name).toBe("After");
    // The update kept the secret: the client still authenticates with it.
    const tokens = await obtainTokens(gw, client);

    const badPut = await manage(client.registration_client_uri, "PUT", token, {
      client_id: "someone-else",
      redirect_uris: [REDIRECT_URI],
    });
    expect(badPut.status).toBe(400);
    expect(badPut.body.error).toBe("invalid_request");

    const active = (t: string) => isActive(gw, t);
    expect(await active(tokens.access_token)).toBe(true);

    const del = await fetch(client.registration_client_uri, {
      method: "DELETE",
      headers: { authorization: `Bearer ${token}`, connection: "close" },
    });
    expect(del.status).toBe(204);
    expect(await active(tokens.access_token)).toBe(false);
    expect(await active(tokens.refresh_token)).toBe(false);
    const after = await refresh(gw, client, tokens.refresh_token);
    expect(after.status).toBe(401);
    expect(after.body.error).toBe("invalid_client");
    expect((await manage(client.registration_client_uri, "GET", token)).status).toBe(404);
  });
});

describe("registration policies", () => {
  let off: RunningGateway;
  let gated: RunningGateway;
  const INITIAL = "initial-access-token-for-tests";
  beforeAll(async () => {
    [off, gated] = await Promise.all([
      startFullGateway({ ...SERVICES, registration: { enabled: false } }),
      startFullGateway({ ...SERVICES, registration: { initial_access_token: INITIAL } }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([off, gated].map((g) => g?.close({ wipe: true })));
  });

  const body = JSON.stringify({ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: "none" });

  it("refuses every registration when turned off, and does not advertise the endpoint", async () => {
    const res = await rawPost(`${off.url}/register`, body, json);
    expect(res.status).toBe(403);
    expect(res.body.error).toBe("access_denied");
    const meta = (await (await fetch(`${off.url}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      unknown
    >;
    expect(meta.registration_endpoint).toBeUndefined();
  });

  it("requires the initial access token when one is configured", async () => {
    const none = await rawPost(`${gated.url}/register`, body, json);
    expect(none.status).toBe(401);
    expect(none.body.error).toBe("invalid_token");
    const wrong = await rawPost(`${gated.url}/register`, body, {
      ...json,
      authorization: "Bearer not-the-token",
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe("invalid_token");
    const right = await rawPost(`${gated.url}/register`, body, {
      ...json,
      authorization: `Bearer ${INITIAL}`,
    });
    expect(right.status).toBe(201);
    expect(right.body.client_id).toBeTruthy();
  });
});
