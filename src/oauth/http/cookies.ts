/** The two cookies of the login flow, and their attributes. */
import type { FastifyReply, FastifyRequest } from "fastify";

/** Binds a pending authorization to the browser that started it. */
export const BROWSER_COOKIE = "mcpgw_browser";
/** The login session ("log in once"). */
export const SESSION_COOKIE = "mcpgw_session";

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
