/**
 * The two cookies of the login flow, and their attributes. On an https issuer they carry the
 * `__Host-` prefix (RFC 6265bis §4.1.3.2): the browser then insists on Secure, Path=/ and no
 * Domain, so no sibling subdomain and no plain-http page can plant or overwrite them. A plain
 * http issuer (localhost) cannot have Secure cookies everywhere, so there they keep bare names.
 *
 * An issuer with a path (`https://host/gw`, the gateway at a sub-path of a shared host) scopes
 * its cookies to that path, so the host's other applications are not sent them and two
 * gateways under one host do not overwrite each other's. `__Host-` demands Path=/, so there
 * they carry `__Secure-` (still Secure-only, never set by a plain-http page).
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { publicPath } from "../../config/public-path.js";

export interface CookieNames {
  /** Binds a pending authorization to the browser that started it. */
  browser: string;
  /** The login session ("log in once"). */
  session: string;
}

/** How this issuer's cookies are set: Secure or not, and the path they are scoped to. */
export interface CookieScope {
  secure: boolean;
  path: string;
}

/** The cookies' names and scope for `issuer` (public_url). */
export function cookiesFor(issuer: string): { names: CookieNames; scope: CookieScope } {
  const secure = issuer.startsWith("https:");
  const path = publicPath(issuer) || "/";
  const prefix = !secure ? "" : path === "/" ? "__Host-" : "__Secure-";
  return {
    names: { browser: `${prefix}mcpgw_browser`, session: `${prefix}mcpgw_session` },
    scope: { secure, path },
  };
}

export function readCookie(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_-]{1,100}$/.test(value) ? value : undefined;
    }
  }
  return undefined;
}

export function setCookie(
  reply: FastifyReply,
  name: string,
  value: string,
  options: CookieScope & { maxAgeSeconds?: number },
): void {
  const attrs = [`${name}=${value}`, `Path=${options.path}`, "HttpOnly", "SameSite=Lax"];
  if (options.secure) attrs.push("Secure");
  if (options.maxAgeSeconds !== undefined) attrs.push(`Max-Age=${options.maxAgeSeconds}`);
  const previous = reply.getHeader("set-cookie");
  const list =
    previous === undefined ? [] : Array.isArray(previous) ? previous.map(String) : [String(previous)];
  reply.header("set-cookie", [...list, attrs.join("; ")]);
}
