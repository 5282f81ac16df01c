/**
 * CORS for the authorization server's machine endpoints. Browser-based MCP clients (the MCP
 * Inspector, web IDEs) discover, register and exchange codes with fetch() from their own
 * origin. These endpoints use no cookies and never allow credentials, so any origin may call
 * them; the pages a person uses (/authorize, /login, /consent) get no CORS at all.
 */
import type { FastifyInstance, onSendHookHandler } from "fastify";

const MACHINE_ROUTES = [
  "/.well-known/oauth-authorization-server",
  "/.well-known/openid-configuration",
  "/jwks",
  "/register",
  "/register/:clientId",
  "/token",
  "/revoke",
  "/introspect",
];

const PREFLIGHT_HEADERS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, PUT, DELETE",
  "access-control-allow-headers": "authorization, content-type, mcp-protocol-version",
  "access-control-max-age": "86400",
};

/** `metadataRoutes`: every URL the RFC 8414 metadata is served at (they depend on the issuer's path). */
export function registerMachineCors(app: FastifyInstance, metadataRoutes: readonly string[] = []): void {
  const routes = new Set([...MACHINE_ROUTES, ...metadataRoutes]);
  // Added to those routes only, as they are registered (so before registerEndpoints), and as a
  // callback hook: a subtree-wide async hook cost every answer a promise, a microtask turn and
  // the object fastify builds on each read of `request.routeOptions`, to find the route's URL.
  const cors: onSendHookHandler = (_request, reply, payload, done) => {
    reply.header("access-control-allow-origin", "*");
    reply.header("access-control-expose-headers", "www-authenticate");
    done(null, payload);
  };
  app.addHook("onRoute", (route) => {
    if (!routes.has(route.url)) return;
    const own = route.onSend === undefined ? [] : Array.isArray(route.onSend) ? route.onSend : [route.onSend];
    route.onSend = [...own, cors];
  });
  for (const url of routes) {
    app.options(url, async (_request, reply) => reply.code(204).headers(PREFLIGHT_HEADERS).send());
  }
}
