/**
 * Shared steps of the authorization-server HTTP tests: a gateway with a local user, a code
 * obtained through the real login and consent pages, and the tokens it redeems for.
 */
import { randomUUID } from "node:crypto";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { expect } from "vitest";
import { hashSecret } from "../../src/crypto/secrets.js";
import { LocalUsers } from "../../src/idp/local.js";
import type { TokenEndpointAuthMethod } from "../../src/oauth/clients.js";
import type { RunningGateway } from "../support/full-gateway.js";
import {
  type AuthorizeParams,
  authorizeWithLocalLogin,
  Browser,
  formPost,
  pkcePair,
  REDIRECT_URI,
  type RegisteredClient,
  registerClient,
  tokenRequest,
} from "../support/oauth-client.js";

/** Any running gateway (in this process or its own): only its URL is needed. */
export type AtUrl = Pick<RunningGateway, "url">;

export const LOGIN = { username: "alice", password: "correct horse battery" };

/** Two services: `notes` with two scopes (narrowing tests), `files` with one. */
export const SERVICES = {
  services: {
    notes: { url: "http://127.0.0.1:9/mcp", scopes: ["notes:read", "notes:write"] },
    files: { url: "http://127.0.0.1:9/mcp", scopes: ["files:read"] },
  },
};

export type StoreCase = { name: string; redis: boolean };
export const STORES: StoreCase[] = [
  { name: "sqlite", redis: false },
  { name: "redis", redis: true },
];

export async function addLocalUser(gw: RunningGateway): Promise<void> {
  await new LocalUsers(gw.store).add(LOGIN.username, LOGIN.password, "alice@example.com");
}

/**
 * Resource servers the operator registered with known ids (as `admin` would) and listed in
 * `introspection.allowed_clients`: the only clients that may introspect other clients' tokens.
 */
export const RESOURCE_SERVERS = {
  basic: { id: "test-resource-server", secret: "the resource server's long secret" },
  post: { id: "test-resource-server-post", secret: "the other resource server's secret" },
};
/** Config tree part that lets RESOURCE_SERVERS introspect any token. */
export const INTROSPECTION = {
  introspection: { allowed_clients: [RESOURCE_SERVERS.basic.id, RESOURCE_SERVERS.post.id] },
};

export async function addResourceServers(gw: RunningGateway): Promise<void> {
  const methods: Record<keyof typeof RESOURCE_SERVERS, TokenEndpointAuthMethod> = {
    basic: "client_secret_basic",
    post: "client_secret_post",
  };
  for (const [kind, { id, secret }] of Object.entries(RESOURCE_SERVERS)) {
    await gw.as.clients.save({
      client_id: id,
      client_secret_hash: hashSecret(secret),
      client_name: `Resource server (${kind})`,
      redirect_uris: [],
      grant_types: [],
      response_types: [],
      token_endpoint_auth_method: methods[kind as keyof typeof RESOURCE_SERVERS],
      client_id_issued_at: Math.floor(Date.now() / 1000),
      client_secret_expires_at: 0,
      source: "admin",
    });
  }
}

/** Whether the gateway still considers `token` live, asked by a resource server. */
export async function isActive(gw: RunningGateway, token: string): Promise<unknown> {
  return (await formPost(`${gw.url}/introspect`, { token }, RESOURCE_SERVERS.basic)).body.active;
}

export function basicOf(client: RegisteredClient): { id: string; secret: string } {
  if (!client.client_secret) throw new Error("not a confidential client");
  return { id: client.client_id, secret: client.client_secret };
}

/** Runs /authorize -> login -> consent in a fresh browser; returns the code and its verifier. */
export async function obtainCode(
  gw: AtUrl,
  client: RegisteredClient,
  params: Omit<AuthorizeParams, "client_id" | "code_challenge"> = {},
): Promise<{ code: string; verifier: string }> {
  const { verifier, challenge } = pkcePair();
  const back = await authorizeWithLocalLogin(
    gw.url,
    new Browser(),
    { client_id: client.client_id, code_challenge: challenge, ...params },
    LOGIN,
  );
  const code = back.searchParams.get("code");
  if (!code) throw new Error(`no code in ${back.toString()}`);
  return { code, verifier };
}

/** Redeems a code at /token; `basic` for confidential clients. */
export function redeem(
  gw: AtUrl,
  client: RegisteredClient,
  { code, verifier }: { code: string; verifier: string },
  extra: Record<string, string | string[]> = {},
) {
  const form = {
    grant_type: "authorization_code",
    code,
    code_verifier: verifier,
    redirect_uri: REDIRECT_URI,
    ...extra,
  };
  return client.client_secret
    ? tokenRequest(gw.url, form, basicOf(client))
    : tokenRequest(gw.url, { ...form, client_id: client.client_id });
}

/** The whole flow: a code and then tokens (asserting success), for tests about what comes after. */
export async function obtainTokens(
  gw: AtUrl,
  client: RegisteredClient,
  params: Omit<AuthorizeParams, "client_id" | "code_challenge"> = {},
): Promise<{ access_token: string; refresh_token: string; scope?: string }> {
  const res = await redeem(gw, client, await obtainCode(gw, client, params));
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { access_token: string; refresh_token: string; scope?: string };
}

/** A refresh grant for `client`. */
export function refresh(
  gw: AtUrl,
  client: RegisteredClient,
  refreshToken: string,
  extra: Record<string, string | string[]> = {},
) {
  const form = { grant_type: "refresh_token", refresh_token: refreshToken, ...extra };
  return client.client_secret
    ? tokenRequest(gw.url, form, basicOf(client))
    : tokenRequest(gw.url, { ...form, client_id: client.client_id });
}

/** A raw POST with any body and content type, answering status, headers and parsed JSON (if any). */
export async function rawPost(
  url: string,
  body: string | Buffer,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Headers; body: Record<string, unknown>; text: string }> {
  const res = await fetch(url, { method: "POST", headers: { connection: "close", ...headers }, body });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  if ((res.headers.get("content-type") ?? "").includes("json") && text)
    parsed = JSON.parse(text) as Record<string, unknown>;
  return { status: res.status, headers: res.headers, body: parsed, text };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Concurrent presentations of one refresh token with no reuse grace: one of them rotates it and
 * the others are reuse, which ends the grant. Whether the rotating request is answered before
 * the family ends is a race, so: at most one 200, every other answer invalid_grant, and the
 * 200's successor (if any) refused afterwards.
 */
export async function expectFamilyEnded(
  results: Array<{ status: number; body: Record<string, unknown> }>,
  refreshSuccessor?: (token: string) => Promise<{ status: number; body: Record<string, unknown> }>,
): Promise<void> {
  const won = results.filter((r) => r.status === 200);
  expect(won.length).toBeLessThanOrEqual(1);
  expect(results.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.body.error}`)).toEqual(
    Array(results.length - won.length).fill("400 invalid_grant"),
  );
  const successor = won[0]?.body.refresh_token;
  if (successor && refreshSuccessor) {
    const after = await refreshSuccessor(successor as string);
    expect(`${after.status} ${after.body.error}`).toBe("400 invalid_grant");
  }
}

/**
 * A client registered with private_key_jwt (ES256) and the key it signs its assertions with:
 * `assertion()` is a fresh, valid RFC 7523 assertion for `gw`'s /token (iss = sub = client_id,
 * a new jti every time).
 */
export async function registerKeyClient(gw: AtUrl): Promise<{
  client: RegisteredClient;
  assertion: () => Promise<string>;
}> {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const client = await registerClient(gw.url, {
    token_endpoint_auth_method: "private_key_jwt",
    token_endpoint_auth_signing_alg: "ES256",
    jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256", use: "sig" }] },
  });
  const assertion = () =>
    new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: "ES256", kid: "k1" })
      .setIssuer(client.client_id)
      .setSubject(client.client_id)
      .setAudience(`${gw.url}/token`)
      .setIssuedAt()
      .setExpirationTime("60s")
      .sign(privateKey);
  return { client, assertion };
}
