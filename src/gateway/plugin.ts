/**
 * The resource side as one encapsulated fastify subtree: protected resource metadata, the
 * protected MCP endpoints (`/{name}/mcp`, and `/mcp` on `{name}.{base_domain}`), and /verify
 * for ForwardAuth. Its own body handling (none: bodies are streamed, never parsed) and its
 * own error handler (JSON-RPC shaped, no stack ever) stay inside this subtree.
 */
import type { FastifyError, FastifyInstance } from "fastify";
import type { CacheRegistry } from "../cache/ttl-cache.js";
import type { ResourceIndex } from "../config/resources.js";
import type { GatewayConfig } from "../config/schema.js";
import type { ClientAddresses } from "../http/client-address.js";
import type { Shortcuts } from "../http/server.js";
import { type Audit, NO_AUDIT } from "../ops/audit.js";
import type { RequestLog } from "../ops/request-log.js";
import { startTracing } from "../ops/tracing.js";
import { StoreUnavailableError } from "../store/errors.js";
import type { VerificationKeys } from "../tokens/key-set.js";
import type { Revocations } from "../tokens/revocations.js";
import { AccessChecker } from "./access.js";
import { Admission } from "./admission.js";
import { EndpointPages } from "./browser-page.js";
import { INTERNAL_ERROR, sendJsonRpcError } from "./errors.js";
import { registerForwardAuth, verifyShortcut } from "./forward-auth.js";
import { reservedHeaderNames } from "./headers.js";
import { mcpEndpoint, ROUTED_METHODS } from "./mcp-endpoint.js";
import { McpInspector } from "./mcp-inspection.js";
import { OriginPolicy } from "./origin.js";
import { registerMetadataRoutes } from "./prm.js";
import { UpstreamProxy, type UpstreamTarget } from "./proxy.js";
import { proxyShortcut } from "./proxy-shortcut.js";
import { ServiceRouter } from "./routing.js";
import { TokenVerifier } from "./token-check.js";
import { VerifyTargets } from "./verify-target.js";

export interface GatewayDeps {
  config: GatewayConfig;
  /** Public keys only: the resource side verifies and never signs. */
  keys: VerificationKeys;
  revocations: Revocations;
  resources: ResourceIndex;
  /** service name -> how its Streamable HTTP endpoint is reached (stdio services are bridged to unix sockets first). */
  upstreams: Map<string, UpstreamTarget>;
  /** Where refusals of presented tokens are recorded; none by default. */
  audit?: Audit;
  /** Where /verify's shortcut is added (the app's server must be built with them). */
  shortcuts: Shortcuts;
  /** What the shortcut records its answers in, as fastify's hook does for the rest. */
  requests: RequestLog;
  /** Who sent each request (`trust_proxy`), the same view the request log uses. */
  clients: ClientAddresses;
  /** Where /metrics finds the token check's cache. */
  caches?: CacheRegistry;
}

/** Registers the gateway's encapsulated subtree on `app`. Upstream pools close with the app. */
export async function registerGateway(app: FastifyInstance, deps: GatewayDeps): Promise<void> {
  const { config, keys, revocations, resources, upstreams, clients } = deps;
  await app.register(async (scope) => {
    // Bodies go to the upstream as a stream, untouched: no parser reads them here.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", (_req, _payload, done) => done(null, undefined));

    scope.setErrorHandler((err: FastifyError, req, reply) => {
      if (err instanceof StoreUnavailableError) {
        req.log.warn({ err }, "store unavailable");
        if (reply.sent || reply.raw.headersSent) return;
        return sendJsonRpcError(reply, 503, "The gateway cannot reach its data store; try again shortly", {
          "retry-after": String(err.retryAfterSeconds),
        });
      }
      const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      if (status === 500) req.log.error({ err }, "gateway error");
      if (reply.sent || reply.raw.headersSent) return;
      const message = status === 500 ? "Internal gateway error" : "Bad request";
      return sendJsonRpcError(reply, status, message, {}, status === 500 ? INTERNAL_ERROR : undefined);
    });

    const router = new ServiceRouter(config, resources);
    const verifier = new TokenVerifier(keys, revocations, config.public_url, deps.caches);
    const access = new AccessChecker(config, resources, router, verifier, deps.audit ?? NO_AUDIT);
    const origins = new OriginPolicy(config, router);
    // The Origin and token steps, one object for every lane of every endpoint.
    const admission = new Admission(origins, access, clients);
    const proxy = new UpstreamProxy(upstreams, {
      maxBody: config.gateway.max_body,
      headersTimeoutSeconds: config.gateway.upstream_timeout,
      reserved: reservedHeaderNames(config.gateway.identity_headers),
    });
    scope.addHook("onClose", async () => proxy.close());
    // Off unless otel.endpoint is set; then the spans still buffered go out on close.
    const tracing = await startTracing(config.otel);
    if (tracing) scope.addHook("onClose", async () => tracing.close());

    registerMetadataRoutes(scope, config, router);
    const targets = new VerifyTargets(router, clients);
    const pages = new EndpointPages(config.public_url, resources);
    registerForwardAuth(scope, { config, targets, admission, tracing, pages });
    // Traced, every /verify takes the fastify route, which records its span; untraced, the
    // shortcut answers cached verdicts ahead of fastify.
    if (!tracing) {
      deps.shortcuts.add(
        "verify",
        verifyShortcut({ config, targets, admission, pages, requests: deps.requests }),
      );
    }

    const inspector = new McpInspector({
      config,
      router,
      audit: deps.audit ?? NO_AUDIT,
      metrics: deps.requests.metrics,
    });
    const handle = mcpEndpoint({
      admission,
      origins,
      proxy,
      inspector,
      clients,
      identityNames: config.gateway.identity_headers,
      tracing,
      pages,
    });
    // Untraced, an admitted request with a cached verdict is proxied ahead of fastify (the
    // route below decides the same for it); traced, every request takes the route.
    let closing = false;
    scope.addHook("preClose", (done) => {
      closing = true;
      done();
    });
    if (!tracing) {
      deps.shortcuts.add(
        "mcp",
        proxyShortcut({
          router,
          admission,
          origins,
          proxy,
          inspector,
          clients,
          identityNames: config.gateway.identity_headers,
          requests: deps.requests,
          log: scope.log,
          maxBody: config.gateway.max_body,
          closing: () => closing,
        }),
      );
    }
    scope.route<{ Params: { service: string } }>({
      method: ROUTED_METHODS,
      url: "/:service/mcp",
      exposeHeadRoute: false,
      handler: (req, reply) => handle(req, reply, router.byName(req.params.service)),
    });
    if (router.hostRouting) {
      scope.route({
        method: ROUTED_METHODS,
        url: "/mcp",
        exposeHeadRoute: false,
        handler: (req, reply) => handle(req, reply, router.byHost(clients.of(req.raw).host)),
      });
    }
  });
}
