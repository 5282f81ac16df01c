/**
 * CORS for the authorization server's machine endpoints. Browser-based MCP clients (the MCP
 * Inspector, web IDEs) discover, register and exchange codes with fetch() from their own
 * origin. These endpoints use no cookies and never allow credentials, so any origin may call
 * them; the pages a person uses (/authorize, /login, /consent) get no CORS at all.
 */
import type { FastifyInstance } from "fastify";

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
  // A callback hook, not an async one: it runs on every answer of the subtree, and an async
  // hook costs each of them a promise and a turn of the microtask queue for two headers.
  app.addHook("onSend", (request, reply, payload, done) => {
    if (routes.has(request.routeOptions.url ?? "")) {
      reply.header("access-control-allow-origin", "*");
      reply.header("access-control-expose-headers", "www-authenticate");
    }
    done(null, payload);
  });
  for (const url of routes) {
    app.options(url, async (_request, reply) => reply.code(204).headers(PREFLIGHT_HEADERS).send());
  }
}
