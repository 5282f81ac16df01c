/**
 * Before a login registers anything or opens a browser: is there an OAuth-protected MCP server
 * at this URL? One unauthenticated MCP request (an `initialize`, which servers of both eras
 * understand or refuse in MCP's own terms) tells: a protected server answers 401 with a Bearer
 * challenge (MCP authorization; RFC 9728 §5.1 names its metadata there). Anything else is
 * reported for what it is: no server, not MCP, an MCP server that needs no login, a failing
 * server or proxy, or a network error naming the host.
 */
import { bodyExcerpt, fetchNamingFailures, statusLine } from "./network.js";

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

const PROBE = {
  jsonrpc: "2.0",
  id: "mcp-gateway-login-check",
  method: "initialize",
  params: {
    protocolVersion: "2025-11-25",
    capabilities: {},
    clientInfo: { name: "mcp-gateway CLI", version: "1" },
  },
};

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

/** JSON-RPC "unsupported protocol version" (2026-07-28): the server read the request as MCP. */
const UNSUPPORTED_PROTOCOL_VERSION = -32022;

/** Resolves with what the challenge said, or throws NotProtectedError / NetworkError / Error. */
export async function checkProtectedServer(serverUrl: string): Promise<ProtectedServer> {
  const res = await fetchNamingFailures(serverUrl, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2025-11-25",
    },
    body: JSON.stringify(PROBE),
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
  const message = jsonRpcIn(text);
  if ((res.ok && message?.result !== undefined) || message?.error?.code === UNSUPPORTED_PROTOCOL_VERSION) {
    await endSession(serverUrl, res.headers.get("mcp-session-id"));
    throw new NotProtectedError(
      serverUrl,
      "it is an MCP server that asks for no authorization (it answered an MCP request without a token), so there is nothing to log in to",
    );
  }
  if (res.status >= 300 && res.status < 400) {
    const location = res.headers.get("location");
    throw new NotProtectedError(
      serverUrl,
      `it answered ${statusLine(res)}${location ? ` to ${location}` : ""}`,
    );
  }
  const excerpt = message?.error?.message ? bodyExcerpt(message.error.message) : bodyExcerpt(text);
  const what = res.status === 404 ? "there is nothing at that path" : "it does not answer MCP requests";
  throw new NotProtectedError(
    serverUrl,
    `it answered ${statusLine(res)}${excerpt ? ` (${excerpt})` : ""}; ${what}`,
  );
}

/** An open server gave the probe a session: end it rather than leave it to time out. */
async function endSession(serverUrl: string, sessionId: string | null): Promise<void> {
  if (!sessionId) return;
  await fetch(serverUrl, { method: "DELETE", headers: { "mcp-session-id": sessionId } })
    .then((r) => r.body?.cancel())
    .catch(() => undefined);
}
