/**
 * Redirect URI policy (OAuth 2.1 §2.3.1, RFC 8252 for native apps):
 * - https anywhere; http only on loopback hosts, by exact host (not `localhost.evil.com`);
 * - private-use schemes for native apps (`com.example.app:/cb`, `cursor://…`), but never
 *   schemes that run or read things in the browser;
 * - no fragments; matched exactly at /authorize, except that a loopback port may vary.
 */
import { isLoopbackHttp } from "../net/loopback.js";

const FORBIDDEN_SCHEMES = new Set([
  "javascript:",
  "data:",
  "vbscript:",
  "file:",
  "about:",
  "blob:",
  "ftp:",
  "ws:",
  "wss:",
]);

function parse(uri: string): URL | undefined {
  try {
    return new URL(uri);
  } catch {
    return undefined;
  }
}

/** Why a redirect URI may not be registered, or undefined if it may. */
export function redirectUriProblem(uri: string): string | undefined {
  const url = parse(uri);
  if (!url) return `not an absolute URI: ${uri}`;
  if (uri.includes("#")) return `redirect URIs may not contain a fragment: ${uri}`;
  if (FORBIDDEN_SCHEMES.has(url.protocol)) return `scheme ${url.protocol} is not allowed: ${uri}`;
  if (url.protocol === "https:")
    return url.hostname ? undefined : `https redirect URI without a host: ${uri}`;
  if (url.protocol === "http:") {
    return isLoopbackHttp(url)
      ? undefined
      : `http is only allowed for loopback hosts (localhost, 127.0.0.1, [::1]): ${uri}`;
  }
  // A private-use scheme (RFC 8252 §7.1) for a native app.
  return undefined;
}

/** Whether `requested` is one of the registered URIs (loopback port may vary, RFC 8252 §7.3). */
export function redirectUriMatches(registered: readonly string[], requested: string): boolean {
  if (registered.includes(requested)) return true;
  const req = parse(requested);
  if (!req || !isLoopbackHttp(req) || requested.includes("#")) return false;
  return registered.some((candidate) => {
    const reg = parse(candidate);
    return (
      reg !== undefined &&
      isLoopbackHttp(reg) &&
      reg.hostname === req.hostname &&
      reg.pathname === req.pathname &&
      reg.search === req.search &&
      reg.username === req.username &&
      reg.password === req.password
    );
  });
}
