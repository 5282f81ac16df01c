/**
 * Which headers cross the gateway. Towards the upstream: everything end-to-end except the
 * client's credentials and anything that could impersonate the gateway's identity headers,
 * then the identity from the verified token. Back to the client: everything end-to-end except
 * cookies (the upstream shares the gateway's origin and must not set cookies on it).
 * MCP's own headers (Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method,
 * Mcp-Name, Mcp-Param-*) are end-to-end and pass both ways untouched.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { GatewayConfig } from "../config/schema.js";
import type { AccessTokenClaims } from "../tokens/claims.js";

/** RFC 9110 §7.6.1 connection-specific headers, plus the ones the HTTP client sets itself. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "http2-settings",
]);

/** Never forwarded upstream: the client's credentials, and Origin (the gateway already checked it). */
const CLIENT_ONLY = new Set(["authorization", "cookie", "origin"]);

export type IdentityHeaderNames = GatewayConfig["gateway"]["identity_headers"];

/** Whether a request says it carries a body (a length above zero, or a transfer coding). */
export function declaresBody(headers: IncomingHttpHeaders): boolean {
  return headers["transfer-encoding"] !== undefined || Number(headers["content-length"] ?? 0) > 0;
}

/** Header names (lower-case) a client must never be able to set for the upstream. */
export function reservedHeaderNames(names: IdentityHeaderNames): Set<string> {
  return new Set(Object.values(names).map((n) => n.toLowerCase()));
}

function isReserved(name: string, reserved: Set<string>): boolean {
  return name.startsWith("x-user-") || name.startsWith("x-auth-") || reserved.has(name);
}

const NO_TOKENS: ReadonlySet<string> = new Set();

/** Names listed in a Connection header are hop-by-hop for this message too. */
function connectionTokens(
  headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>,
): ReadonlySet<string> {
  const value = headers.connection;
  // The common cases name no other header: skip the parsing.
  if (value === undefined || value === "keep-alive" || value === "close") return NO_TOKENS;
  const list = Array.isArray(value) ? value.join(",") : value;
  return new Set(
    list
      .split(",")
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
}

/**
 * An HTTP header value is visible ASCII and spaces; anything else in an identity (a name with
 * accents, a stray newline) is percent-encoded, so it can neither break nor inject a header.
 */
export function headerSafe(value: string): string {
  return value.replace(/[^\u0020-\u007e]|%/g, (c) => encodeURIComponent(c));
}

/** The identity headers for a verified token. `email` is empty when the token has none. */
export function identityHeaders(
  claims: AccessTokenClaims,
  names: IdentityHeaderNames,
): Record<string, string> {
  // Verified claims are cached per token, so the same object comes back on every request
  // with that token: encode its headers once.
  const memo = identityMemo.get(claims);
  if (memo?.names === names) return memo.headers;
  const headers = {
    [names.user_id]: headerSafe(claims.sub),
    [names.user_name]: headerSafe(claims.preferred_username ?? ""),
    [names.user_email]: headerSafe(claims.email ?? ""),
    [names.client_id]: headerSafe(claims.client_id),
  };
  identityMemo.set(claims, { names, headers });
  return headers;
}

const identityMemo = new WeakMap<
  AccessTokenClaims,
  { names: IdentityHeaderNames; headers: Record<string, string> }
>();

/** Request headers for the upstream: filtered client headers, forwarding info, then identity. */
export function upstreamRequestHeaders(
  incoming: IncomingHttpHeaders,
  identity: Record<string, string>,
  reserved: Set<string>,
  forwarded: { for?: string; proto: string; host?: string },
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const dropped = connectionTokens(incoming);
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name) || CLIENT_ONLY.has(name) || dropped.has(name) || isReserved(name, reserved))
      continue;
    if (name.startsWith("x-forwarded-") || name === "forwarded") continue;
    out[name] = value;
  }
  // Our own view of the client, not whatever the client claims about itself.
  if (forwarded.for) out["x-forwarded-for"] = forwarded.for;
  out["x-forwarded-proto"] = forwarded.proto;
  if (forwarded.host) out["x-forwarded-host"] = forwarded.host;
  for (const [name, value] of Object.entries(identity)) {
    if (value !== "") out[name.toLowerCase()] = value;
  }
  return out;
}

/** Response headers for the client: upstream headers minus hop-by-hop and cookies. */
export function clientResponseHeaders(
  upstream: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const dropped = connectionTokens(upstream);
  for (const [name, value] of Object.entries(upstream)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || dropped.has(lower) || lower === "set-cookie") continue;
    out[lower] = value;
  }
  return out;
}
