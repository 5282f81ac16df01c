/**
 * The proxy shortcut (src/http/server.ts Shortcuts): an MCP request on `/{name}/mcp` whose
 * token verdict is cached and admits it, needing no look into its body, is forwarded without
 * fastify's routing, hooks and reply objects, which cost the proxied call a fifth of the CPU
 * a bare pass-through spends on it (bench/RESULTS.md). It decides exactly what the route
 * decides for such a request, with the same parts (ServiceRouter, Admission for Origin and
 * token, McpInspector, UpstreamProxy); everything else (no token, an uncached or
 * refused one, a preflight, host routing, an odd URL or content type, an inspected request,
 * a body over the limit) is declined untouched and takes fastify's route.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { FastifyBaseLogger } from "fastify";
import type { ClientAddresses } from "../http/client-address.js";
import type { Shortcut } from "../http/server.js";
import type { RequestLog } from "../ops/request-log.js";
import type { Admission } from "./admission.js";
import { declaresBody, type IdentityHeaderNames, identityHeaders } from "./headers.js";
import type { McpInspector } from "./mcp-inspection.js";
import type { OriginPolicy } from "./origin.js";
import { type Exchange, RawExchange, type UpstreamProxy } from "./proxy.js";
import type { ServiceRouter } from "./routing.js";

/** The route pattern the metrics (and the request log) name, as fastify's route has it. */
const ROUTE = "/:service/mcp";
const SUFFIX = "/mcp";
const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

function noop(): void {}

export interface ProxyShortcutDeps {
  router: ServiceRouter;
  /** Origin and token, the steps every lane shares (admission.ts). */
  admission: Admission;
  /** CORS headers of an admitted browser request, as the route adds them. */
  origins: OriginPolicy;
  proxy: UpstreamProxy;
  inspector: McpInspector;
  clients: ClientAddresses;
  identityNames: IdentityHeaderNames;
  requests: RequestLog;
  log: FastifyBaseLogger;
  /** `gateway.max_body`: a larger declared body goes to the route for its 413. */
  maxBody: number;
  /** True once the app is closing: fastify then answers new requests itself (503). */
  closing(): boolean;
}

/**
 * The service name of a path-routed MCP URL (`/{name}/mcp`, optionally with a query), or
 * undefined. Only the plain spelling: anything fastify's router would decode or normalise
 * (percent-encoding, extra slashes) is left to it.
 */
export function pathService(url: string): string | undefined {
  const slash = url.indexOf("/", 1);
  if (slash <= 1 || url.charCodeAt(0) !== 47) return undefined;
  if (!url.startsWith(SUFFIX, slash)) return undefined;
  const end = slash + SUFFIX.length;
  if (end !== url.length && url.charCodeAt(end) !== 63 /* ? */) return undefined;
  const name = url.slice(1, slash);
  return name.includes("%") ? undefined : name;
}

/** A body the shortcut may stream: none, or JSON (what every MCP client sends). */
function plainBody(headers: IncomingHttpHeaders): boolean {
  if (!declaresBody(headers)) return true;
  return headers["content-type"]?.startsWith("application/json") === true;
}

export function proxyShortcut(deps: ProxyShortcutDeps): Shortcut {
  const { router, admission, origins, proxy, inspector, clients, identityNames, requests, log, maxBody } =
    deps;
  // Made once, shared by every call: the request log's line once the response closes, and the
  // answer to the gateway's own bug (relay() answers the upstream's failures itself).
  const answered = (exchange: RawExchange) =>
    requests.shortcutAnswered(ROUTE, exchange.raw, exchange.res.statusCode, exchange.startedAt);
  const bug = (err: unknown, exchange: Exchange) => {
    log.error({ err }, "gateway error");
    if (!exchange.res.headersSent) exchange.fail(500, "Internal gateway error", []);
    else exchange.res.destroy();
  };
  return (req, res) => {
    const method = req.method;
    if (method !== "POST" && method !== "GET" && method !== "DELETE") return false;
    const name = pathService(req.url as string);
    if (name === undefined || deps.closing() || !proxy.has(name)) return false;
    const route = router.byName(name);
    if (!route) return false;
    const headers = req.headers;
    if (!plainBody(headers) || Number(headers["content-length"] ?? 0) > maxBody) return false;
    if (inspector.wants(req, route)) return false;
    const claims = admission.admittedNow(req, route);
    if (!claims) return false;

    const origin = headers.origin;
    const cors = origin === undefined ? NO_HEADERS : origins.corsHeaders(origin);
    const exchange = new RawExchange(req, res, cors, log, performance.now(), answered);
    proxy.relay(
      exchange,
      name,
      identityHeaders(claims, identityNames),
      clients.of(req),
      undefined,
      undefined,
      noop,
      bug,
    );
    return true;
  };
}
