/**
 * Which service a request is for, and the URLs that service is known by. Path routing
 * (`/{name}/mcp`) always works; host routing (`{name}.{base_domain}/mcp`) is on when
 * `base_domain` is set. Disabled services are not in the ResourceIndex, so they route nowhere.
 */
import type { ResourceIndex } from "../config/resources.js";
import type { GatewayConfig, ServiceConfig } from "../config/schema.js";

/** How a request reached its service; decides which resource URL it is talking to. */
export type RouteKind = "path" | "host";

export interface ServiceRoute {
  name: string;
  via: RouteKind;
  service: ServiceConfig;
}

export const PRM_PREFIX = "/.well-known/oauth-protected-resource";

export class ServiceRouter {
  private readonly baseDomain?: string;
  /** base_domain may carry a port (`localhost:8080`); then the Host header's port must match too. */
  private readonly baseDomainHasPort: boolean;
  private readonly scheme: string;
  private readonly pathRoutes = new Map<string, ServiceRoute>();
  private readonly hostRoutes = new Map<string, ServiceRoute>();

  constructor(
    private readonly config: GatewayConfig,
    private readonly resources: ResourceIndex,
  ) {
    this.baseDomain = config.base_domain?.toLowerCase().replace(/^\.+|\.+$/g, "") || undefined;
    this.baseDomainHasPort = Boolean(this.baseDomain?.includes(":"));
    this.scheme = new URL(config.public_url).protocol;
  }

  /** Whether host routing is on. */
  get hostRouting(): boolean {
    return this.baseDomain !== undefined;
  }

  /**
   * An enabled service by name, reached by path routing. The configuration is fixed for the
   * process, so each (name, via) route is built once and shared: callers never change one.
   */
  byName(name: string, via: RouteKind = "path"): ServiceRoute | undefined {
    const routes = via === "path" ? this.pathRoutes : this.hostRoutes;
    const known = routes.get(name);
    if (known) return known;
    if (!this.resources.services.has(name)) return undefined;
    const service = this.config.services[name];
    if (!service?.enabled) return undefined;
    const route: ServiceRoute = Object.freeze({ name, via, service });
    // Only configured names get here, so the maps stay as small as the configuration.
    routes.set(name, route);
    return route;
  }

  /**
   * The service whose host this is (`{name}.{base_domain}`), or undefined. `host` is the Host
   * header value (with port), as the client sent it or as a trusted proxy forwarded it.
   */
  byHost(host: string | undefined): ServiceRoute | undefined {
    if (!this.baseDomain || !host) return undefined;
    let candidate = host.trim().toLowerCase().replace(/\.$/, "");
    if (!this.baseDomainHasPort) candidate = stripPort(candidate);
    const suffix = `.${this.baseDomain}`;
    if (!candidate.endsWith(suffix)) return undefined;
    const label = candidate.slice(0, -suffix.length);
    if (!label || label.includes(".")) return undefined;
    return this.byName(label, "host");
  }

  /** The service named by the first segment of a path like `/{name}/mcp…`. */
  byPath(path: string | undefined): ServiceRoute | undefined {
    if (!path) return undefined;
    const match = /^\/([a-z0-9][a-z0-9-]*)(?:[/?#]|$)/.exec(path);
    return match?.[1] ? this.byName(match[1], "path") : undefined;
  }

  /** The resource URL a client used to reach the service (the `resource` of its metadata). */
  resourceUrl(route: ServiceRoute): string {
    return route.via === "host"
      ? `${this.scheme}//${route.name}.${this.baseDomain}/mcp`
      : `${this.config.public_url}/${route.name}/mcp`;
  }

  /** Where that resource's RFC 9728 metadata lives (path-inserted form, RFC 9728 §3.1). */
  metadataUrl(route: ServiceRoute): string {
    return route.via === "host"
      ? `${this.scheme}//${route.name}.${this.baseDomain}${PRM_PREFIX}/mcp`
      : `${this.config.public_url}${PRM_PREFIX}/${route.name}/mcp`;
  }

  /** The browser origin of a service's own host, for the Origin check. */
  hostOrigin(name: string): string | undefined {
    return this.baseDomain ? `${this.scheme}//${name}.${this.baseDomain}` : undefined;
  }
}

function stripPort(host: string): string {
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  const colon = host.lastIndexOf(":");
  return colon >= 0 ? host.slice(0, colon) : host;
}
