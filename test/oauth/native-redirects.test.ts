/**
 * What Cursor, VS Code and Windsurf send: dynamic registrations of native apps whose redirect
 * URIs are private-use schemes (RFC 8252 §7.1; `cursor://anysphere.cursor-mcp/oauth/callback`
 * is not reverse-DNS) and loopback URLs, with or without `application_type`. Then the rules
 * around them: `application_type: web` means https only, schemes that run or read things in a
 * browser are refused whatever the type or the configuration, and `registration.allowed_schemes`
 * decides which non-reverse-DNS schemes pass.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../../src/config/load.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { authorizeWithLocalLogin, Browser, pkcePair, tokenRequest } from "../support/oauth-client.js";
import { addLocalUser, LOGIN, rawPost, SERVICES } from "./helpers.js";

const CURSOR = "cursor://anysphere.cursor-mcp/oauth/callback";

/** Cursor's registration: three redirect URIs in one request, a public client. */
const cursorRegistration = {
  client_name: "Cursor",
  redirect_uris: [
    CURSOR,
    "https://www.cursor.com/agents/mcp/oauth/callback",
    "http://localhost:8787/callback",
  ],
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  token_endpoint_auth_method: "none",
};

/** VS Code's registration (src/vs/base/common/oauth.ts, fetchDynamicRegistration). */
const vscodeRegistration = {
  client_name: "Visual Studio Code",
  client_uri: "https://code.visualstudio.com",
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  redirect_uris: [
    "https://insiders.vscode.dev/redirect",
    "https://vscode.dev/redirect",
    "http://localhost",
    "http://127.0.0.1",
    "http://localhost:33418",
    "http://127.0.0.1:33418",
  ],
  scope: "notes:read",
  token_endpoint_auth_method: "none",
  application_type: "native",
};

let gw: RunningGateway;
beforeAll(async () => {
  gw = await startFullGateway(SERVICES);
  await addLocalUser(gw);
});
afterAll(async () => {
  await gw?.close({ wipe: true });
});

const register = (base: string, body: Record<string, unknown>) =>
  rawPost(`${base}/register`, JSON.stringify(body), { "content-type": "application/json" });

/** Authorize -> login -> consent for `clientId` back to `redirectUri`, then the code exchange. */
async function signIn(clientId: string, redirectUri: string) {
  const { verifier, challenge } = pkcePair();
  const back = await authorizeWithLocalLogin(
    gw.url,
    new Browser(),
    { client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge },
    LOGIN,
  );
  const code = back.searchParams.get("code");
  const tokens = await tokenRequest(gw.url, {
    grant_type: "authorization_code",
    client_id: clientId,
    code: code ?? "",
    code_verifier: verifier,
    redirect_uri: redirectUri,
  });
  return { back, tokens };
}

describe("IDE clients register private-use and loopback redirects as native apps", () => {
  it.each([
    ["without application_type (clients before MCP 2026-07-28)", {}],
    ["with application_type native", { application_type: "native" }],
  ])("Cursor's registration %s is a native app, and a login returns to cursor://", async (_name, extra) => {
    const res = await register(gw.url, { ...cursorRegistration, ...extra });
    expect(res.status, res.text).toBe(201);
    expect(res.body.application_type).toBe("native");
    expect(res.body.redirect_uris).toEqual(cursorRegistration.redirect_uris);
    const { back, tokens } = await signIn(res.body.client_id as string, CURSOR);
    expect(`${back.protocol}//${back.host}${back.pathname}`).toBe(CURSOR);
    expect(back.searchParams.get("iss")).toBe(gw.url);
    expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
    // The management read (RFC 7592) tells the stored type too.
    const read = await fetch(res.body.registration_client_uri as string, {
      headers: { authorization: `Bearer ${res.body.registration_access_token}` },
    });
    expect(((await read.json()) as Record<string, unknown>).application_type).toBe("native");
  });

  it("VS Code's registration: its loopback redirect on any port, and its https redirect", async () => {
    const res = await register(gw.url, vscodeRegistration);
    expect(res.status, res.text).toBe(201);
    expect(res.body.application_type).toBe("native");
    const id = res.body.client_id as string;
    // VS Code listens on a port of its choosing; RFC 8252 §7.3 lets the port vary.
    const loopback = await signIn(id, "http://127.0.0.1:54321/");
    expect(loopback.tokens.status, JSON.stringify(loopback.tokens.body)).toBe(200);
    const web = await signIn(id, "https://vscode.dev/redirect");
    expect(web.tokens.status, JSON.stringify(web.tokens.body)).toBe(200);
  });

  it.each([
    ["vscode", "vscode://vscode.mcp-auth/callback"],
    ["vscode-insiders", "vscode-insiders://vscode.mcp-auth/callback"],
    ["windsurf", "windsurf://codeium.windsurf/oauth/callback"],
    ["a reverse-DNS scheme (RFC 8252 §7.1)", "com.example.app:/oauth2redirect"],
  ])("accepts %s for a native app", async (_name, uri) => {
    const res = await register(gw.url, {
      client_name: "IDE",
      redirect_uris: [uri],
      token_endpoint_auth_method: "none",
      application_type: "native",
    });
    expect(res.status, res.text).toBe(201);
  });
});

describe("what stays refused", () => {
  it.each([
    "javascript:alert(document.cookie)",
    "javascript://anysphere.cursor-mcp/%0Aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "file:///etc/passwd",
    "vbscript:msgbox(1)",
    "about:blank",
    "blob:https://gateway.example/1",
    "view-source:https://gateway.example/",
    "myapp://callback",
  ])("refuses %s even for a native app", async (uri) => {
    const res = await register(gw.url, {
      client_name: "x",
      redirect_uris: [uri],
      token_endpoint_auth_method: "none",
      application_type: "native",
    });
    expect(`${res.status} ${res.body.error}`).toBe("400 invalid_redirect_uri");
  });

  it("a web application redirects to https only: no loopback, no private-use scheme", async () => {
    for (const uri of ["http://127.0.0.1:8787/callback", CURSOR]) {
      const res = await register(gw.url, {
        client_name: "web",
        redirect_uris: ["https://app.example/cb", uri],
        token_endpoint_auth_method: "none",
        application_type: "web",
      });
      expect(`${res.status} ${res.body.error}`, uri).toBe("400 invalid_redirect_uri");
      expect(res.body.error_description).toMatch(/web application redirects to https only/);
    }
    const https = await register(gw.url, {
      client_name: "web",
      redirect_uris: ["https://app.example/cb"],
      token_endpoint_auth_method: "none",
      application_type: "web",
    });
    expect(https.status).toBe(201);
    expect(https.body.application_type).toBe("web");
  });

  it("a client that sends no application_type and only https redirects is a web app (the OIDC default)", async () => {
    const res = await register(gw.url, {
      client_name: "Claude",
      redirect_uris: ["https://claude.ai/api/mcp/auth_callback"],
      token_endpoint_auth_method: "client_secret_post",
    });
    expect(res.status).toBe(201);
    expect(res.body.application_type).toBe("web");
  });

  it("refuses an application_type that is neither web nor native", async () => {
    const res = await register(gw.url, {
      client_name: "x",
      redirect_uris: [CURSOR],
      token_endpoint_auth_method: "none",
      application_type: "desktop",
    });
    expect(`${res.status} ${res.body.error}`).toBe("400 invalid_client_metadata");
  });
});

describe("registration.allowed_schemes", () => {
  let custom: RunningGateway;
  beforeAll(async () => {
    custom = await startFullGateway({ registration: { allowed_schemes: ["myapp", "Zed:"] } });
  });
  afterAll(async () => {
    await custom?.close({ wipe: true });
  });

  it("replaces the default list: its schemes pass, Cursor's no longer does, reverse-DNS always does", async () => {
    const attempt = (uri: string) =>
      register(custom.url, { client_name: "x", redirect_uris: [uri], token_endpoint_auth_method: "none" });
    expect((await attempt("myapp://callback")).status).toBe(201);
    expect((await attempt("zed://oauth/callback")).status).toBe(201);
    expect((await attempt("com.example.app:/cb")).status).toBe(201);
    const cursor = await attempt(CURSOR);
    expect(`${cursor.status} ${cursor.body.error}`).toBe("400 invalid_redirect_uri");
    expect(cursor.body.error_description).toMatch(/registration\.allowed_schemes/);
  });

  it.each([["javascript"], ["data:"], ["https"], ["not a scheme"]])(
    "refuses to start with %s in the list, naming the key",
    (scheme) => {
      expect(() => validateConfig({ registration: { allowed_schemes: [scheme] } })).toThrow(
        /registration\.allowed_schemes/,
      );
    },
  );
});
