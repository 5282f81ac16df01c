/** Loopback addresses by name, as OAuth (RFC 8252 §7.3) and MCP clients use them. */

/** Host names (as `URL.hostname` spells them) that always mean this machine. */
export const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** An `http:` URL on a loopback host, by exact host (not `localhost.evil.com`). */
export function isLoopbackHttp(url: URL): boolean {
  return url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname);
}
