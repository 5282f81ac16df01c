/**
 * A browser that opens a service's MCP URL (a GET asking for text/html) and has no token gets
 * the same 401 and WWW-Authenticate as any client, with an HTML page (web/endpoint-page.ts) as
 * the body instead of the JSON-RPC error. MCP clients' GETs ask for text/event-stream and their
 * POSTs carry JSON-RPC, so neither ever gets the page. The pages are rendered once per service.
 * /verify sends the same page for a browser's GET a proxy asks about (Caddy and Traefik pass
 * the refusal's body on; nginx's auth_request shows its own).
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { ResourceIndex } from "../config/resources.js";
import { endpointPage } from "../web/endpoint-page.js";
import { PAGE_HEADERS } from "../web/pages.js";
import type { ServiceRoute } from "./routing.js";

/** Whether `accept` lists text/html (explicitly, with a q above 0): a browser's navigation does. */
export function acceptsHtml(accept: string | undefined): boolean {
  if (!accept?.includes("text/html")) return false;
  return accept.split(",").some((range) => {
    const [type, ...params] = range.split(";").map((p) => p.trim().toLowerCase());
    if (type !== "text/html") return false;
    const q = params.find((p) => p.startsWith("q="));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

export class EndpointPages {
  /** `${service} ${via}` -> the page, since path and host routes have different URLs. */
  private readonly pages = new Map<string, string>();

  constructor(publicUrl: string, resources: ResourceIndex) {
    for (const entry of resources.services.values()) {
      const connect = `${publicUrl}/?service=${encodeURIComponent(entry.service)}#connect`;
      const render = (url: string) => endpointPage({ service: entry.service, url, connect });
      this.pages.set(`${entry.service} path`, render(entry.pathUrl));
      if (entry.hostUrl) this.pages.set(`${entry.service} host`, render(entry.hostUrl));
    }
  }

  /**
   * Whether this refusal goes to a person in a browser rather than to an MCP client. `method`
   * is the request's, or for /verify the one the proxy forwards (X-Forwarded-Method).
   */
  wanted(req: FastifyRequest, status: number, method: string = req.method): boolean {
    return status === 401 && method === "GET" && acceptsHtml(req.headers.accept);
  }

  /** The 401 with `headers` (the challenge, CORS) and the page for `route`, if it has one. */
  send(reply: FastifyReply, route: ServiceRoute, headers: Record<string, string>): FastifyReply | undefined {
    const page = this.pages.get(`${route.name} ${route.via}`);
    return page === undefined ? undefined : reply.code(401).headers(headers).headers(PAGE_HEADERS).send(page);
  }
}
