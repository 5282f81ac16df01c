/**
 * The two cookies of the login flow, and their attributes. On an https issuer they carry the
 * `__Host-` prefix (RFC 6265bis §4.1.3.2): the browser then insists on Secure, Path=/ and no
 * Domain, so no sibling subdomain and no plain-http page can plant or overwrite them. A plain
 * http issuer (localhost) cannot have Secure cookies everywhere, so there they keep bare names.
 */
import type { FastifyReply, FastifyRequest } from "fastify";

export interface CookieNames {
  /** Binds a pending authorization to the browser that started it. */
  browser: string;
  /** The login session ("log in once"). */
  session: string;
}

export function cookieNames(secure: boolean): CookieNames {
  const prefix = secure ? "__Host-" : "";
  return { browser: `${prefix}mcpgw_browser`, session: `${prefix}mcpgw_session` };
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
  options: { secure: boolean; maxAgeSeconds?: number },
): void {
  const attrs = [`${name}=${value}`, "Path=/", "HttpOnly", "SameSite=Lax"];
  if (options.secure) attrs.push("Secure");
  if (options.maxAgeSeconds !== undefined) attrs.push(`Max-Age=${options.maxAgeSeconds}`);
  const previous = reply.getHeader("set-cookie");
  const list =
    previous === undefined ? [] : Array.isArray(previous) ? previous.map(String) : [String(previous)];
  reply.header("set-cookie", [...list, attrs.join("; ")]);
}
