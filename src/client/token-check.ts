/**
 * `token`: an access token the server still accepts. A cached token can be dead before it
 * expires (revoked, its grant ended), and nothing on the client says so: RFC 7662
 * introspection is not open to a public client, and the client is not told of revocations. So
 * the server itself is asked, with the cheapest authenticated request MCP has: `server/discover`
 * (2026-07-28; stateless, no side effects; a 2025 server refuses it without a session, after
 * its token check). A 401 means the token is dead: refresh, and ask again.
 */
import { PROTOCOL_VERSION_META_KEY } from "@modelcontextprotocol/client";
import { freshTokens, refreshTokens } from "./access-token.js";
import type { CredentialStore, StoredTokens } from "./credentials.js";
import { fetchNamingFailures, NetworkError } from "./network.js";
import { LoginRequiredError } from "./provider.js";

type Verdict = { kind: "accepted" } | { kind: "refused" } | { kind: "unreachable"; reason: string };

const DISCOVER = JSON.stringify({
  jsonrpc: "2.0",
  id: "mcp-gateway-token-check",
  method: "server/discover",
  params: {
    _meta: {
      [PROTOCOL_VERSION_META_KEY]: "2026-07-28",
      "io.modelcontextprotocol/clientCapabilities": {},
      "io.modelcontextprotocol/clientInfo": { name: "mcp-gateway CLI", version: "1" },
    },
  },
});

/** Whether the MCP server at `serverUrl` accepts `accessToken`. */
export async function askServer(serverUrl: string, accessToken: string): Promise<Verdict> {
  let res: Response;
  try {
    res = await fetchNamingFailures(serverUrl, {
      method: "POST",
      headers: {
        authorization: `Bearer ${accessToken}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "server/discover",
      },
      body: DISCOVER,
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    if (err instanceof NetworkError) return { kind: "unreachable", reason: err.message };
    return { kind: "unreachable", reason: (err as Error).message };
  }
  await res.body?.cancel().catch(() => undefined);
  const challenge = res.headers.get("www-authenticate") ?? "";
  if (res.status === 401 || (res.status === 403 && /error="?invalid_token/.test(challenge))) {
    return { kind: "refused" };
  }
  return { kind: "accepted" };
}

export interface CheckedToken {
  tokens: StoredTokens;
  /** Set when the server could not be asked: the token is printed all the same. */
  warning?: string;
}

/** The access token for `serverUrl`, refreshed first when near expiry or refused by the server. */
export async function checkedAccessToken(store: CredentialStore, serverUrl: string): Promise<CheckedToken> {
  let tokens = await freshTokens(store, serverUrl);
  let verdict = await askServer(serverUrl, tokens.access_token);
  if (verdict.kind === "refused") {
    const dead = tokens.access_token;
    tokens = await refreshTokens(store, serverUrl, (t) => t.access_token !== dead);
    verdict = await askServer(serverUrl, tokens.access_token);
    if (verdict.kind === "refused") {
      throw new LoginRequiredError(serverUrl, `${serverUrl} refuses even a freshly refreshed access token`);
    }
  }
  if (verdict.kind === "unreachable") {
    return {
      tokens,
      warning: `could not check the access token with the server (${verdict.reason}); printing the cached one`,
    };
  }
  return { tokens };
}
