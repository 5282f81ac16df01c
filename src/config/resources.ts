/**
 * Resource identifiers (RFC 8707) of the configured services. The authorization server uses
 * them to accept a `resource` parameter; the gateway uses them as the audience a token must
 * carry. A service is reachable at `{public_url}/{name}/mcp` and, with `base_domain`, at
 * `{scheme}://{name}.{base_domain}/mcp`; both are its resource URLs.
 */
import type { GatewayConfig } from "./schema.js";

/**
 * Canonical form used for comparison: lower-case scheme and host, default port dropped, no
 * fragment or query, no trailing slash (RFC 8707 §2 and the MCP spec's canonical server URI).
 * Returns undefined for something that is not an absolute http(s) URL.
 */
export function canonicalResource(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return undefined;
  if (url.hash || value.includes("#")) return undefined;
  const path = url.pathname.replace(/\/+$/, "");
  return `${url.protocol}//${url.host.toLowerCase()}${path}`;
}

export interface ServiceResource {
  service: string;
  /** The URL advertised as `resource` in path routing. */
  pathUrl: string;
  /** The URL advertised in host routing, when base_domain is set. */
  hostUrl?: string;
}

export class ResourceIndex {
  private readonly byUrl = new Map<string, string>();
  readonly services = new Map<string, ServiceResource>();
  /** The issuer as an audience: a gateway-wide token (only honoured when configured). */
  readonly gatewayResource: string;

  constructor(config: GatewayConfig) {
    this.gatewayResource = canonicalResource(config.public_url) ?? config.public_url;
    const scheme = new URL(config.public_url).protocol;
    for (const [name, service] of Object.entries(config.services)) {
      if (!service.enabled) continue;
      const entry: ServiceResource = { service: name, pathUrl: `${config.public_url}/${name}/mcp` };
      if (config.base_domain) entry.hostUrl = `${scheme}//${name}.${config.base_domain}/mcp`;
      this.services.set(name, entry);
      for (const url of [entry.pathUrl, entry.hostUrl]) {
        const canonical = url && canonicalResource(url);
        if (canonical) this.byUrl.set(canonical, name);
      }
    }
  }

  /** The service a resource URL names, or undefined. */
  serviceFor(resource: string): string | undefined {
    const canonical = canonicalResource(resource);
    return canonical ? this.byUrl.get(canonical) : undefined;
  }

  /** Whether a `resource` parameter names something this gateway protects (a service or itself). */
  isKnown(resource: string): boolean {
    const canonical = canonicalResource(resource);
    return canonical !== undefined && (this.byUrl.has(canonical) || canonical === this.gatewayResource);
  }

  /** Canonical audience values that admit a request to `service` (both routings). */
  audiencesFor(service: string): string[] {
    const entry = this.services.get(service);
    if (!entry) return [];
    return [entry.pathUrl, entry.hostUrl]
      .map((u) => u && canonicalResource(u))
      .filter((u): u is string => Boolean(u));
  }
}
