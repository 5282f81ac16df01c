/**
 * Before a login registers anything or opens a browser: is there an OAuth-protected MCP server
 * at this URL? Two looks tell:
 *
 * 1. One MCP request without a token (`server/discover`, 2026-07-28's cheapest request, with
 *    its `_meta` envelope and headers). A protected server answers 401 with a Bearer challenge
 *    (MCP authorization; RFC 9728 §5.1 names its metadata there).
 * 2. Otherwise its RFC 9728 protected resource metadata: a server may answer some requests
 *    without a token (or check its parameters first) and still protect others.
 *
 * Anything else is reported for what it is: nothing at that path, not an MCP endpoint, an MCP
 * server that asks for no authorization, a failing server or proxy, or a network error naming
 * the host and the cause.
 */
import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  discoverOAuthProtectedResourceMetadata,
  discoverOAuthServerInfo,
  PROTOCOL_VERSION_META_KEY,
} from "@modelcontextprotocol/client";
import { bodyExcerpt, fetchNamingFailures, NetworkError, statusLine } from "./network.js";

/** The URL answered, but not as an OAuth-protected MCP server does. */
export class NotProtectedError extends Error {
  constructor(serverUrl: string, reason: string) {
    super(`${serverUrl} is not an OAuth-protected MCP server: ${reason}`);
    this.name = "NotProtectedError";
  }
}

/** What the challenge of a protected server said. */
export interface ProtectedServer {
  /** RFC 9728 `resource_metadata` of the challenge. */
  resourceMetadataUrl?: URL;
  /** `scope` of the challenge. */
  scope?: string;
}

const PROBE = JSON.stringify({
  jsonrpc: "2.0",
  id: "mcp-gateway-login-check",
  method: "server/discover",
  params: {
    _meta: {
      [PROTOCOL_VERSION_META_KEY]: "2026-07-28",
      [CLIENT_CAPABILITIES_META_KEY]: {},
      [CLIENT_INFO_META_KEY]: { name: "mcp-gateway CLI", version: "1" },
    },
  },
});

/** A parameter of a `WWW-Authenticate` Bearer (or DPoP) challenge. */
function challengeParam(header: string, name: string): string | undefined {
  const m = new RegExp(`${name}="([^"]*)"|${name}=([^\\s,]+)`).exec(header);
  return m?.[1] ?? m?.[2];
}

/** The JSON-RPC message in a JSON or SSE body, if there is one. */
function jsonRpcIn(
  text: string,
): { result?: unknown; error?: { code?: number; message?: string } } | undefined {
  const lines = text.split("\n").map((l) => l.replace(/^data:\s?/, ""));
  for (const line of [text, ...lines]) {
    try {
      const parsed = JSON.parse(line) as { jsonrpc?: unknown; result?: unknown; error?: { code?: number } };
      if (parsed?.jsonrpc === "2.0") return parsed;
    } catch {
      // Not this line.
    }
  }
  return undefined;
}

/** Whether the server publishes RFC 9728 metadata naming an authorization server. */
async function publishesProtectedResourceMetadata(serverUrl: string): Promise<boolean> {
  try {
    const metadata = await discoverOAuthProtectedResourceMetadata(serverUrl, {}, fetchNamingFailures);
    return (metadata.authorization_servers?.length ?? 0) > 0;
  } catch (err) {
    if (err instanceof NetworkError) throw err;
    return false;
  }
}

/** Resolves with what the challenge said, or throws NotProtectedError / NetworkError / Error. */
export async function checkProtectedServer(serverUrl: string): Promise<ProtectedServer> {
  const res = await fetchNamingFailures(serverUrl, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2026-07-28",
      "mcp-method": "server/discover",
    },
    body: PROBE,
    redirect: "manual",
    signal: AbortSignal.timeout(30_000),
  });
  const challenge = res.headers.get("www-authenticate") ?? "";
  const bearer = /^\s*(bearer|dpop)\b/i.test(challenge);
  if (res.status === 401 || (res.status === 403 && bearer)) {
    await res.body?.cancel();
    const metadata = challengeParam(challenge, "resource_metadata");
    let resourceMetadataUrl: URL | undefined;
    try {
      resourceMetadataUrl = metadata ? new URL(metadata, serverUrl) : undefined;
    } catch {
      resourceMetadataUrl = undefined;
    }
    return { resourceMetadataUrl, scope: challengeParam(challenge, "scope") };
  }
  const text = await res.text().catch(() => "");
  if (res.status >= 500) {
    const excerpt = bodyExcerpt(text);
    throw new Error(
      `${serverUrl} answered ${statusLine(res)}${excerpt ? ` (${excerpt})` : ""}: the server, or a proxy in front of it, is failing; try again later`,
    );
  }
  // It answered without asking for a token; it may still protect other requests.
  if (await publishesProtectedResourceMetadata(serverUrl)) return {};
  const message = jsonRpcIn(text);
  if (res.status >= 300 && res.status < 400) {
    const location = res.headers.get("location");
    throw new NotProtectedError(
      serverUrl,
      `it answered ${statusLine(res)}${location ? ` to ${location}` : ""}`,
    );
  }
  if (res.status !== 404 && message) {
    throw new NotProtectedError(
      serverUrl,
      "it is an MCP server that asks for no authorization (it answered an MCP request without a token and publishes no OAuth metadata), so there is nothing to log in to",
    );
  }
  const excerpt = message?.error?.message ? bodyExcerpt(message.error.message) : bodyExcerpt(text);
  const what = res.status === 404 ? "there is nothing at that path" : "it does not answer MCP requests";
  throw new NotProtectedError(
    serverUrl,
    `it answered ${statusLine(res)}${excerpt ? ` (${excerpt})` : ""}; ${what}`,
  );
}

/**
 * The server's challenge and its authorization server, as every login starts: the protected
 * resource's 401, then discovery from its metadata; the issuer is the metadata's own.
 */
export async function discoverLoginServer(url: string) {
  const challenge = await checkProtectedServer(url);
  const server = await discoverOAuthServerInfo(url, {
    resourceMetadataUrl: challenge.resourceMetadataUrl,
    fetchFn: fetchNamingFailures,
  });
  const metadata = server.authorizationServerMetadata;
  const issuer = metadata?.issuer ?? server.authorizationServerUrl;
  return { challenge, server, metadata, issuer };
}
