/**
 * The MCP TypeScript SDK's own client `auth()` against the gateway, with nothing special cased:
 * RFC 9728 discovery from the service URL, RFC 8414 metadata, dynamic registration, PKCE,
 * the authorization (driven through the real login and consent pages), the code exchange, a
 * refresh, and finally an MCP call through the gateway with the tokens it obtained.
 */

import { auth, UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { OAuthTokens } from "@modelcontextprotocol/sdk/shared/auth.js";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addLocalUser, LOGIN } from "../oauth/helpers.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { BrowserProvider } from "../support/mcp-clients.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";

/**
 * The shared cookie-jar browser provider, logging in as LOGIN, with a fixed `state` so the test
 * can check the SDK sends it and the gateway returns it.
 */
class TestProvider extends BrowserProvider {
  constructor(gatewayUrl: string) {
    super(gatewayUrl, LOGIN, "SDK test client");
  }
  state(): string {
    return "sdk-state";
  }
}

describe("MCP SDK client auth() against the gateway", () => {
  let upstream: TestUpstream;
  let gw: RunningGateway;

  beforeAll(async () => {
    upstream = await startUpstream();
    gw = await startFullGateway({
      services: { notes: { url: upstream.url, scopes: ["notes:read"] }, files: { url: upstream.url } },
    });
    await addLocalUser(gw);
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
    await upstream?.close();
  });

  it("discovers, registers, authorizes, exchanges the code and refreshes, then calls a tool", async () => {
    const serverUrl = `${gw.url}/notes/mcp`;
    const provider = new TestProvider(gw.url);
    const seen: string[] = [];
    const fetchFn = (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : input.toString());
      seen.push(`${init?.method ?? "GET"} ${url.pathname}`);
      return fetch(input, init);
    };

    // First call: discovery, registration, then the user agent is sent to /authorize.
    expect(await auth(provider, { serverUrl, fetchFn })).toBe("REDIRECT");
    expect(seen).toContain("GET /.well-known/oauth-protected-resource/notes/mcp");
    expect(seen).toContain("GET /.well-known/oauth-authorization-server");
    expect(seen).toContain("POST /register");
    expect(provider.info?.client_id).toBeTruthy();

    const request = provider.authorizationUrl as URL;
    expect(`${request.origin}${request.pathname}`).toBe(`${gw.url}/authorize`);
    expect(request.searchParams.get("code_challenge_method")).toBe("S256");
    expect(request.searchParams.get("resource")).toBe(serverUrl);
    expect(request.searchParams.get("client_id")).toBe(provider.info?.client_id);

    const callback = provider.callback as URL;
    expect(callback.searchParams.get("state")).toBe("sdk-state");
    expect(callback.searchParams.get("iss")).toBe(gw.url);
    const code = callback.searchParams.get("code");
    expect(code).toBeTruthy();

    // Second call: the code is exchanged.
    expect(await auth(provider, { serverUrl, authorizationCode: code as string, fetchFn })).toBe(
      "AUTHORIZED",
    );
    expect(seen).toContain("POST /token");
    const first = provider.saved as OAuthTokens;
    expect(first.token_type.toLowerCase()).toBe("bearer");
    expect(first.refresh_token).toBeTruthy();
    expect(decodeJwt(first.access_token)).toMatchObject({
      iss: gw.url,
      aud: serverUrl,
      sub: "alice",
      client_id: provider.info?.client_id,
      scope: "notes:read",
    });

    // Third call with tokens saved: the SDK refreshes, and the gateway rotates the refresh token.
    expect(await auth(provider, { serverUrl, fetchFn })).toBe("AUTHORIZED");
    const second = provider.saved as OAuthTokens;
    expect(second.access_token).not.toBe(first.access_token);
    expect(second.refresh_token).toBeTruthy();
    expect(second.refresh_token).not.toBe(first.refresh_token);

    // The SDK client uses the tokens through the gateway to reach the real upstream.
    const client = new Client({ name: "sdk-auth-test", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider }));
    try {
      const tools = await client.listTools();
      expect(tools.tools.map((t) => t.name)).toContain("whoami");
    } finally {
      await client.close();
    }
  });

  it("completes the flow the SDK transport starts from a 401 challenge, with finishAuth", async () => {
    const serverUrl = new URL(`${gw.url}/notes/mcp`);
    const provider = new TestProvider(gw.url);
    const first = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
    const client = new Client({ name: "sdk-auth-test", version: "1.0.0" });
    // No token: the gateway answers 401 with resource_metadata, the SDK runs auth() and redirects.
    await expect(client.connect(first)).rejects.toBeInstanceOf(UnauthorizedError);
    const code = provider.callback?.searchParams.get("code");
    expect(code).toBeTruthy();
    await first.finishAuth(code as string);
    expect(provider.saved?.access_token).toBeTruthy();

    const again = new Client({ name: "sdk-auth-test", version: "1.0.0" });
    await again.connect(new StreamableHTTPClientTransport(serverUrl, { authProvider: provider }));
    try {
      const result = await again.callTool({ name: "whoami" });
      const headers = JSON.parse((result.content as Array<{ text: string }>)[0]?.text ?? "{}") as Record<
        string,
        string
      >;
      // The gateway passed the caller's identity on, and did not pass the bearer token upstream.
      expect(headers["x-user-name"]).toBe("alice");
      expect(headers.authorization).toBeUndefined();
    } finally {
      await again.close();
      await client.close().catch(() => {});
    }
  });

  it("two services, two audiences: each SDK login opens only its own service", async () => {
    const connect = async (service: string, provider: TestProvider) => {
      const client = new Client({ name: "sdk-auth-test", version: "1.0.0" });
      const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}/${service}/mcp`), {
        authProvider: provider,
      });
      try {
        await client.connect(transport);
      } catch (err) {
        if (!(err instanceof UnauthorizedError)) throw err;
        await transport.finishAuth(provider.callback?.searchParams.get("code") as string);
        await client.connect(
          new StreamableHTTPClientTransport(new URL(`${gw.url}/${service}/mcp`), { authProvider: provider }),
        );
      }
      return client;
    };
    const notes = new TestProvider(gw.url);
    const files = new TestProvider(gw.url);
    const notesClient = await connect("notes", notes);
    const filesClient = await connect("files", files);
    try {
      expect((await notesClient.listTools()).tools.length).toBeGreaterThan(0);
      expect((await filesClient.listTools()).tools.length).toBeGreaterThan(0);
      expect(decodeJwt(notes.saved?.access_token as string).aud).toBe(`${gw.url}/notes/mcp`);
      expect(decodeJwt(files.saved?.access_token as string).aud).toBe(`${gw.url}/files/mcp`);
      // A token for one service is refused by the other.
      const crossed = await fetch(`${gw.url}/files/mcp`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${notes.saved?.access_token}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
      });
      expect(crossed.status).toBe(401);
      expect(crossed.headers.get("www-authenticate")).toContain('error="invalid_token"');
    } finally {
      await notesClient.close();
      await filesClient.close();
    }
  });
});
