/**
 * Redirect URI policy (OAuth 2.1 §2.3.1; RFC 8252 for native apps; OIDC Registration's
 * `application_type`, which MCP 2026-07-28 asks clients to send):
 * - `web` clients redirect to https only;
 * - `native` clients also to http on loopback hosts (by exact host, not `localhost.evil.com`)
 *   and to private-use schemes (RFC 8252 §7.1): reverse-DNS ones (`com.example.app:/cb`) and
 *   those the operator allows (`registration.allowed_schemes`: the IDEs' `cursor:`, `vscode:`…,
 *   which are not reverse-DNS);
 * - never schemes that run or read things in the browser, whatever the configuration says;
 * - no fragments; matched exactly at /authorize, except that a loopback port may vary.
 */
import { isLoopbackHttp } from "../net/loopback.js";
import { DEFAULT_ALLOWED_SCHEMES, FORBIDDEN_SCHEMES } from "../net/redirect-schemes.js";

export type ApplicationType = "web" | "native";

export interface RedirectUriPolicy {
  /** Private-use schemes allowed besides reverse-DNS ones, lower case, without the colon. */
  allowedSchemes: ReadonlySet<string>;
}

/** The policy for `registration.allowed_schemes` (names compared in lower case, colon dropped). */
export function redirectUriPolicy(
  allowedSchemes: readonly string[] = DEFAULT_ALLOWED_SCHEMES,
): RedirectUriPolicy {
  return { allowedSchemes: new Set(allowedSchemes.map((s) => s.toLowerCase().replace(/:$/, ""))) };
}

export const DEFAULT_REDIRECT_POLICY: RedirectUriPolicy = redirectUriPolicy();

/** What kind of target a redirect URI is, or why it can be none. */
type Kind = { kind: "https" | "loopback" | "private-use" } | { problem: string };

function parse(uri: string): URL | undefined {
  try {
    return new URL(uri);
  } catch {
    return undefined;
  }
}

/** RFC 8252 §7.1: a reverse domain name, e.g. `com.example.app` (at least one dot, no empty label). */
const REVERSE_DNS = /^[a-z][a-z0-9+-]*(\.[a-z0-9][a-z0-9+-]*)+$/;

function classify(uri: string, policy: RedirectUriPolicy): Kind {
  const url = parse(uri);
  if (!url) return { problem: `not an absolute URI: ${uri}` };
  if (uri.includes("#")) return { problem: `redirect URIs may not contain a fragment: ${uri}` };
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (FORBIDDEN_SCHEMES.has(scheme)) return { problem: `scheme ${scheme}: is not allowed: ${uri}` };
  if (scheme === "https") {
    return url.hostname ? { kind: "https" } : { problem: `https redirect URI without a host: ${uri}` };
  }
  if (scheme === "http") {
    return isLoopbackHttp(url)
      ? { kind: "loopback" }
      : { problem: `http is only allowed for loopback hosts (localhost, 127.0.0.1, [::1]): ${uri}` };
  }
  if (REVERSE_DNS.test(scheme) || policy.allowedSchemes.has(scheme)) return { kind: "private-use" };
  return {
    problem:
      `private-use scheme ${scheme}: is neither a reverse domain name (RFC 8252 §7.1, e.g. com.example.app:) ` +
      `nor in registration.allowed_schemes: ${uri}`,
  };
}

/**
 * The application type a client that sent none is taken to be: `native` when any redirect URI
 * is one only a native app can use (loopback http, a private-use scheme), otherwise `web` (the
 * OIDC default). Clients from before MCP 2026-07-28 send no `application_type`, and their
 * loopback redirects must keep working.
 */
export function inferApplicationType(uris: readonly string[], policy: RedirectUriPolicy): ApplicationType {
  return uris.some((uri) => {
    const k = classify(uri, policy);
    return "kind" in k && k.kind !== "https";
  })
    ? "native"
    : "web";
}

/** Why a redirect URI may not be registered for a client of this type, or undefined if it may. */
export function redirectUriProblem(
  uri: string,
  applicationType: ApplicationType,
  policy: RedirectUriPolicy = DEFAULT_REDIRECT_POLICY,
): string | undefined {
  const k = classify(uri, policy);
  if ("problem" in k) return k.problem;
  if (applicationType === "web" && k.kind !== "https") {
    return `a web application redirects to https only; register loopback and private-use redirect URIs with application_type native: ${uri}`;
  }
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
