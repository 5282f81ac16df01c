/**
 * Origin validation (the MCP spec's DNS-rebinding defence) and CORS for browser clients.
 * No Origin header: a non-browser client, fine. An Origin that is the gateway's own
 * (`public_url`, which behind a proxy is the proxy's URL), a service host's, or listed in
 * `gateway.allowed_origins`: allowed, and answered with CORS headers. Anything else: 403,
 * before any token is looked at.
 */
import type { GatewayConfig } from "../config/schema.js";
import type { ServiceRouter } from "./routing.js";

/** Request headers a browser MCP client sends (preflight allow-list). */
const ALLOW_HEADERS = [
  "Authorization",
  "Content-Type",
  "Accept",
  "Mcp-Session-Id",
  "MCP-Protocol-Version",
  "Last-Event-ID",
  "Mcp-Method",
  "Mcp-Name",
];
/** Response headers a browser MCP client must be able to read. */
export const EXPOSE_HEADERS = "Mcp-Session-Id, WWW-Authenticate";
const ALLOW_METHODS = "GET, POST, DELETE, OPTIONS";
/** How long a browser may cache a preflight answer, in seconds. */
const PREFLIGHT_MAX_AGE = "600";

/** `scheme://host[:port]` in lower case, default port dropped; undefined if not an http(s) origin. */
export function normalizeOrigin(value: string): string | undefined {
  try {
    const url = new URL(value);
    if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
    return url.origin.toLowerCase();
  } catch {
    return undefined;
  }
}

export class OriginPolicy {
  private readonly allowed = new Set<string>();

  constructor(
    config: GatewayConfig,
    private readonly router: ServiceRouter,
  ) {
    for (const origin of [config.public_url, ...config.gateway.allowed_origins]) {
      const normal = normalizeOrigin(origin);
      if (normal) this.allowed.add(normal);
    }
  }

  /**
   * Whether a request with this Origin may proceed. `service` admits that service's own host
   * origin. Only origins from the configuration count: never one built from a Host or
   * X-Forwarded-Host header, which a page on a rebound DNS name chooses itself.
   */
  isAllowed(origin: string | undefined, service?: string): boolean {
    if (origin === undefined) return true;
    const normal = normalizeOrigin(origin);
    if (!normal) return false;
    if (this.allowed.has(normal)) return true;
    return service !== undefined && normal === this.router.hostOrigin(service)?.toLowerCase();
  }

  /** CORS headers for an actual (non-preflight) response to an allowed browser origin. */
  corsHeaders(origin: string | undefined): Record<string, string> {
    if (origin === undefined) return {};
    return {
      "access-control-allow-origin": origin,
      "access-control-expose-headers": EXPOSE_HEADERS,
      vary: "Origin",
    };
  }

  /** Headers of a preflight answer; requested `Mcp-Param-*` headers are allowed too. */
  preflightHeaders(origin: string, requestedHeaders: string | undefined): Record<string, string> {
    const params = (requestedHeaders ?? "")
      .split(",")
      .map((h) => h.trim())
      .filter((h) => /^mcp-param-[a-z0-9-]+$/i.test(h));
    return {
      ...this.corsHeaders(origin),
      "access-control-allow-methods": ALLOW_METHODS,
      "access-control-allow-headers": [...ALLOW_HEADERS, ...params].join(", "),
      "access-control-max-age": PREFLIGHT_MAX_AGE,
    };
  }
}
