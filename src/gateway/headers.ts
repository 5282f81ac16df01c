/**
 * Which headers cross the gateway. Towards the upstream: everything end-to-end except the
 * client's credentials, `Expect`, hop-by-hop fields, and anything that could pass for the
 * gateway's identity or forwarding headers under any spelling (case, `_` for `-`), then the
 * gateway's own forwarding headers and the identity from the verified token. Back to the
 * client: everything end-to-end except cookies (the upstream shares the gateway's origin and
 * must not set cookies on it).
 * MCP's own headers (Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method,
 * Mcp-Name, Mcp-Param-*) are end-to-end and pass both ways untouched.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { GatewayConfig } from "../config/schema.js";
import type { AccessTokenClaims } from "../tokens/claims.js";

/**
 * Header names as a lenient upstream may read them: case-folded (Node already lower-cases what
 * it parses) and with `_` for `-`. Node passes `X_User_Id` through as `x_user_id`, and some
 * servers (CGI-style environments, several frameworks) read it as `X-User-Id`.
 */
export function normalName(lowerName: string): string {
  return lowerName.includes("_") ? lowerName.replace(/_/g, "-") : lowerName;
}

/**
 * Never forwarded, by normalised name. Connection-specific fields (RFC 9110 §7.6.1, plus the
 * ones the HTTP client sets itself); `Expect`, which the gateway's own server has already
 * answered (Node sends `100 Continue` itself) and which undici refuses to send; the client's
 * credentials, and Origin (the gateway already checked it).
 */
const NEVER_FORWARDED = new Set([
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
  "expect",
  "authorization",
  "cookie",
  "origin",
]);

/**
 * What a client might write to pass for a proxy's word about itself: the standard
 * `Forwarded` (RFC 7239) and the de facto client-address headers of proxies and CDNs. The
 * `X-Forwarded-*` and `X-Original-*` families are matched by prefix. The gateway sets its own
 * X-Forwarded-For/-Proto/-Host after removing all of them.
 */
const FORWARDING = new Set([
  "forwarded",
  "x-forwarded",
  "x-real-ip",
  "x-client-ip",
  "client-ip",
  "true-client-ip",
  "cf-connecting-ip",
  "cf-connecting-ipv6",
  "fastly-client-ip",
  "akamai-client-ip",
  "x-cluster-client-ip",
  "x-originating-ip",
  "x-remote-ip",
  "x-remote-addr",
  "x-envoy-external-address",
  "x-appengine-user-ip",
]);

/**
 * Prefixes of names a client may not set: forwarding families, identity look-alikes, and the
 * gateway's own cluster headers (src/cluster/protocol.ts), which only instances send each other.
 */
const RESERVED_PREFIXES = ["x-forwarded-", "x-original-", "x-user-", "x-auth-", "x-mcp-gateway-"];

export type IdentityHeaderNames = GatewayConfig["gateway"]["identity_headers"];

/** Whether a request says it carries a body (a length above zero, or a transfer coding). */
export function declaresBody(headers: IncomingHttpHeaders): boolean {
  return headers["transfer-encoding"] !== undefined || Number(headers["content-length"] ?? 0) > 0;
}

/** The configured identity header names, normalised: a client must never set any of them. */
export function reservedHeaderNames(names: IdentityHeaderNames): Set<string> {
  return new Set(Object.values(names).map((n) => normalName(n.toLowerCase())));
}

/** Whether a client's header (by normalised name) is one the upstream must not get from it. */
function isStripped(name: string, reserved: Set<string>): boolean {
  if (NEVER_FORWARDED.has(name) || FORWARDING.has(name) || reserved.has(name)) return true;
  // Every reserved prefix starts with "x-": most names are decided by one comparison.
  if (name.charCodeAt(0) !== 120 || name.charCodeAt(1) !== 45) return false;
  for (const prefix of RESERVED_PREFIXES) if (name.startsWith(prefix)) return true;
  return false;
}

const NO_TOKENS: ReadonlySet<string> = new Set();

/** Names listed in a Connection header (normalised) are hop-by-hop for this message too. */
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
      .map((s) => normalName(s.trim().toLowerCase()))
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

/**
 * The identity headers for a verified token. `email` is empty when the token has none. The
 * same frozen object comes back for every request with that token: read it, never change it
 * (copy it for a response of your own).
 */
export function identityHeaders(
  claims: AccessTokenClaims,
  names: IdentityHeaderNames,
): Readonly<Record<string, string>> {
  // Verified claims are cached per token, so the same object comes back on every request
  // with that token: encode its headers once.
  const memo = identityMemo.get(claims);
  if (memo?.names === names) return memo.headers;
  const headers = Object.freeze({
    [names.user_id]: headerSafe(claims.sub),
    [names.user_name]: headerSafe(claims.preferred_username ?? ""),
    [names.user_email]: headerSafe(claims.email ?? ""),
    [names.client_id]: headerSafe(claims.client_id),
  });
  identityMemo.set(claims, { names, headers });
  return headers;
}

const identityMemo = new WeakMap<
  AccessTokenClaims,
  { names: IdentityHeaderNames; headers: Readonly<Record<string, string>> }
>();

/**
 * An identity's headers as they go upstream: lower-cased names, the empty ones left out. Kept
 * per identity object (identityHeaders gives one per token), so a proxied call reads a list.
 */
const upstreamIdentity = new WeakMap<object, readonly string[]>();

function identityFields(identity: Readonly<Record<string, string>>): readonly string[] {
  let fields = upstreamIdentity.get(identity);
  if (fields === undefined) {
    const list: string[] = [];
    for (const name in identity) {
      const value = identity[name] as string;
      if (value !== "") list.push(name.toLowerCase(), value);
    }
    fields = Object.freeze(list);
    // Only a frozen identity keeps its headers: anything else could change under the memo.
    if (Object.isFrozen(identity)) upstreamIdentity.set(identity, fields);
  }
  return fields;
}

/**
 * Per `reserved` set, whether each header name seen so far is stripped: clients send the same
 * few dozen names on every request, so the normalising and prefix checks run once per name.
 * Bounded, since the names are the client's choice; past the bound names are decided afresh.
 */
const strippedMemo = new WeakMap<Set<string>, Map<string, boolean>>();
const STRIPPED_MEMO_MAX = 512;

function strippedName(name: string, reserved: Set<string>): boolean {
  let memo = strippedMemo.get(reserved);
  if (!memo) {
    memo = new Map();
    strippedMemo.set(reserved, memo);
  }
  let stripped = memo.get(name);
  if (stripped === undefined) {
    stripped = isStripped(normalName(name), reserved);
    if (memo.size < STRIPPED_MEMO_MAX) memo.set(name, stripped);
  }
  return stripped;
}

/**
 * Request headers for the upstream: the client's end-to-end headers minus everything above
 * (compared by normalised name, so no spelling gets through), then the gateway's own view of
 * the client, then the identity. `reserved` comes from reservedHeaderNames.
 */
export function upstreamRequestHeaders(
  incoming: IncomingHttpHeaders,
  identity: Readonly<Record<string, string>>,
  reserved: Set<string>,
  forwarded: { for?: string; proto: string; host?: string },
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const dropped = connectionTokens(incoming);
  for (const name in incoming) {
    const value = incoming[name];
    if (value === undefined || strippedName(name, reserved)) continue;
    if (dropped !== NO_TOKENS && dropped.has(normalName(name))) continue;
    out[name] = value;
  }
  // Our own view of the client, not whatever the client claims about itself.
  if (forwarded.for) out["x-forwarded-for"] = forwarded.for;
  out["x-forwarded-proto"] = forwarded.proto;
  if (forwarded.host) out["x-forwarded-host"] = forwarded.host;
  const fields = identityFields(identity);
  for (let i = 0; i < fields.length; i += 2) out[fields[i] as string] = fields[i + 1] as string;
  return out;
}

/** Connection-specific response fields (RFC 9110 §7.6.1); Node and the gateway set their own. */
const HOP_BY_HOP_RESPONSE = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * Each upstream response header name seen so far, as it goes to the client: lower-cased, or
 * null when dropped (hop-by-hop, a cookie). An upstream sends the same few names on every
 * answer. Bounded like strippedMemo; past the bound names are decided afresh.
 */
const answerNameMemo = new Map<string, string | null>();

function answerName(name: string): string | null {
  let out = answerNameMemo.get(name);
  if (out === undefined) {
    const lower = name.toLowerCase();
    out = HOP_BY_HOP_RESPONSE.has(normalName(lower)) || lower === "set-cookie" ? null : lower;
    if (answerNameMemo.size < STRIPPED_MEMO_MAX) answerNameMemo.set(name, out);
  }
  return out;
}

/**
 * Response headers for the client: `base` (the gateway's own, e.g. CORS; copied, not changed),
 * then the upstream headers minus hop-by-hop and cookies.
 */
export function clientResponseHeaders(
  upstream: Record<string, string | string[] | undefined>,
  base?: OutgoingHttpHeaders,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  if (base) for (const name in base) out[name] = base[name];
  const dropped = connectionTokens(upstream);
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined) continue;
    const lower = answerName(name);
    if (lower === null || (dropped !== NO_TOKENS && dropped.has(normalName(lower)))) continue;
    out[lower] = value;
  }
  return out;
}
