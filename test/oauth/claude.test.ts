/**
 * What Claude (claude.ai, Claude Desktop, Claude Code) sends: a dynamic registration as a
 * `client_secret_post` client with its https callback on every fresh connection (so a gateway
 * sees a great many registrations), metadata at the root and path-suffixed discovery URLs, a
 * scope request built from `scopes_supported`, and a re-registration when the token endpoint
 * answers `invalid_client` for a client the gateway no longer knows.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { authorizeWithLocalLogin, Browser, pkcePair, tokenRequest } from "../support/oauth-client.js";
import { addLocalUser, LOGIN, rawPost, SERVICES } from "./helpers.js";

const CALLBACK = "https://claude.ai/api/mcp/auth_callback";

/** Claude's registration body. */
const claudeRegistration = {
  client_name: "Claude",
  redirect_uris: [CALLBACK],
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  token_endpoint_auth_method: "client_secret_post",
  scope: "claudeai",
};

/**
 * Claude registers on every connect, and claude.ai does so from Anthropic's own addresses for
 * all its users: a gateway with many Claude users needs a /register budget per address well
 * above the default. This one has room for the test's hundreds.
 */
const REGISTRATION_ROOM = { rate_limits: { register: { per_address: { max: 1000, window: "10m" } } } };

let gw: RunningGateway;
beforeAll(async () => {
  gw = await startFullGateway({ ...SERVICES, ...REGISTRATION_ROOM });
  await addLocalUser(gw);
});
afterAll(async () => {
  await gw?.close({ wipe: true });
});

async function registerAsClaude(base = gw.url) {
  const res = await rawPost(`${base}/register`, JSON.stringify(claudeRegistration), {
    "content-type": "application/json",
  });
  expect(res.status, res.text).toBe(201);
  return res.body as {
    client_id: string;
    client_secret: string;
    registration_access_token: string;
    registration_client_uri: string;
  };
}

/** One "connect" as Claude does it: register, authorize with a scope and the resource, redeem with the secret in the form. */
async function connect(scope: string, resource = `${gw.url}/notes/mcp`, base = gw.url) {
  const client = await registerAsClaude(base);
  const { verifier, challenge } = pkcePair();
  const back = await authorizeWithLocalLogin(
    base,
    new Browser(),
    {
      client_id: client.client_id,
      redirect_uri: CALLBACK,
      code_challenge: challenge,
      scope,
      resource,
      state: "claude-state",
    },
    LOGIN,
  );
  expect(back.searchParams.get("error"), back.toString()).toBeNull();
  const tokens = await tokenRequest(base, {
    grant_type: "authorization_code",
    code: back.searchParams.get("code") as string,
    code_verifier: verifier,
    redirect_uri: CALLBACK,
    client_id: client.client_id,
    client_secret: client.client_secret,
    resource,
  });
  return { client, back, tokens };
}

describe("Claude: dynamic registration with client_secret_post", () => {
  it("registers as a confidential client_secret_post web app, whatever scope it names", async () => {
    const client = await registerAsClaude();
    expect(client).toMatchObject({
      token_endpoint_auth_method: "client_secret_post",
      application_type: "web",
      redirect_uris: [CALLBACK],
    });
    expect(typeof client.client_secret).toBe("string");
  });

  it("logs in with the scopes it takes from the metadata (the whole scopes_supported, offline_access included), redeems and refreshes with the secret in the form", async () => {
    const meta = (await (await fetch(`${gw.url}/.well-known/oauth-authorization-server`)).json()) as {
      scopes_supported: string[];
    };
    const { client, back, tokens } = await connect(meta.scopes_supported.join(" "));
    expect(back.origin + back.pathname).toBe(CALLBACK);
    expect(back.searchParams.get("state")).toBe("claude-state");
    expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
    expect(tokens.body.refresh_token).toBeTruthy();
    const refreshed = await tokenRequest(gw.url, {
      grant_type: "refresh_token",
      refresh_token: tokens.body.refresh_token as string,
      client_id: client.client_id,
      client_secret: client.client_secret,
    });
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
  });

  it("keeps working when every connect registers anew: hundreds of registrations, the first and the last both usable", async () => {
    const first = await connect("notes:read");
    expect(first.tokens.status).toBe(200);
    const many: string[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const clients = await Promise.all(Array.from({ length: 25 }, () => registerAsClaude()));
      many.push(...clients.map((c) => c.client_id));
    }
    expect(new Set(many).size).toBe(250);
    const last = await connect("notes:read");
    expect(last.tokens.status, JSON.stringify(last.tokens.body)).toBe(200);
    // The first registration still refreshes.
    const refreshed = await tokenRequest(gw.url, {
      grant_type: "refresh_token",
      refresh_token: first.tokens.body.refresh_token as string,
      client_id: first.client.client_id,
      client_secret: first.client.client_secret,
    });
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
  });

  it("answers invalid_client (401) for a registration that is gone, which is Claude's signal to register again", async () => {
    const { client, tokens } = await connect("notes:read");
    const deleted = await fetch(client.registration_client_uri, {
      method: "DELETE",
      headers: { authorization: `Bearer ${client.registration_access_token}` },
    });
    expect(deleted.status).toBe(204);
    const res = await tokenRequest(gw.url, {
      grant_type: "refresh_token",
      refresh_token: tokens.body.refresh_token as string,
      client_id: client.client_id,
      client_secret: client.client_secret,
    });
    expect(`${res.status} ${res.body.error}`).toBe("401 invalid_client");
  });
});

describe("Claude: metadata discovery", () => {
  it("serves the same document at the root RFC 8414 and OpenID locations", async () => {
    const docs = await Promise.all(
      ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"].map(async (path) => {
        const res = await fetch(`${gw.url}${path}`, { headers: { "mcp-protocol-version": "2025-06-18" } });
        expect(res.status, path).toBe(200);
        expect(res.headers.get("content-type")).toMatch(/^application\/json/);
        return res.json();
      }),
    );
    expect(docs[1]).toEqual(docs[0]);
    expect((docs[0] as { issuer: string }).issuer).toBe(gw.url);
  });

  it("has scopes_supported even when no service defines a scope, so a scope request built from it is well formed", async () => {
    const bare = await startFullGateway({ services: { files: { url: "http://127.0.0.1:9/mcp" } } });
    try {
      await addLocalUser(bare);
      const meta = (await (await fetch(`${bare.url}/.well-known/oauth-authorization-server`)).json()) as {
        scopes_supported?: string[];
      };
      expect(meta.scopes_supported).toEqual(["offline_access"]);
      const { tokens } = await connect(
        (meta.scopes_supported ?? []).join(" "),
        `${bare.url}/files/mcp`,
        bare.url,
      );
      expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
      expect(tokens.body.refresh_token).toBeTruthy();
    } finally {
      await bare.close({ wipe: true });
    }
  });
});

describe("Claude: path-suffixed metadata when the issuer has a path", () => {
  it("serves the metadata at every RFC 8414 §3.1 and OIDC location of an issuer with a path", async () => {
    // The gateway behind a proxy at https://gateway.example/mcp-auth, reached here directly at
    // the paths such a proxy forwards (with the prefix stripped, and /.well-known passed as is).
    const issuer = "https://gateway.example/mcp-auth";
    const pathed = await startFullGateway({ ...SERVICES, public_url: issuer });
    try {
      for (const path of [
        "/.well-known/oauth-authorization-server/mcp-auth",
        "/.well-known/openid-configuration/mcp-auth",
        "/mcp-auth/.well-known/openid-configuration",
        "/mcp-auth/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
      ]) {
        const res = await fetch(`${pathed.url}${path}`);
        expect(res.status, path).toBe(200);
        expect(res.headers.get("access-control-allow-origin"), path).toBe("*");
        expect(((await res.json()) as { issuer: string }).issuer, path).toBe(issuer);
      }
      const elsewhere = await fetch(`${pathed.url}/.well-known/oauth-authorization-server/other-path`);
      expect(elsewhere.status).toBe(404);
    } finally {
      await pathed.close({ wipe: true });
    }
  });
});
