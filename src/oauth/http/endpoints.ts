/**
 * The machine-facing endpoints of the authorization server: metadata, JWKS, registration,
 * token, revocation, introspection. Each route only adapts HTTP to the framework-free parts.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { bearerToken } from "../../tokens/bearer.js";
import { OFFLINE_ACCESS } from "../authorize.js";
import { ASSERTION_ALGORITHMS } from "../client-assertion.js";
import { invalidRequest, OAuthError } from "../errors.js";
import type { AuthorizationServer } from "../server.js";
import { routeBrakes } from "./brakes.js";

/** Bodies of these endpoints are small; anything bigger is an attack or a mistake. */
export const OAUTH_BODY_LIMIT = 64 * 1024;

const NO_STORE = { "cache-control": "no-store", pragma: "no-cache" };

/** The registration access token (or initial access token) presented, if it is a usable Bearer credential. */
function bearer(request: FastifyRequest): string | undefined {
  return bearerToken(request.headers.authorization) ?? undefined;
}

function requireForm(request: FastifyRequest): Record<string, unknown> {
  const type = request.headers["content-type"] ?? "";
  if (!type.toLowerCase().startsWith("application/x-www-form-urlencoded")) {
    throw invalidRequest("the request body must be application/x-www-form-urlencoded");
  }
  return (request.body ?? {}) as Record<string, unknown>;
}

/**
 * Where RFC 8414 metadata is asked for. Without a path in the issuer: the two root documents.
 * With one (`https://host/gw`): the path-inserted forms of RFC 8414 §3.1 and of MCP's discovery
 * list (`/.well-known/oauth-authorization-server/gw`, `/.well-known/openid-configuration/gw`) for
 * proxies that pass `/.well-known` on unchanged; the OIDC form (`/gw/.well-known/...`) both as a
 * proxy that strips `/gw` delivers it (the root paths) and as one that does not.
 */
export function metadataPaths(issuer: string): string[] {
  const path = new URL(issuer).pathname.replace(/\/+$/, "");
  const names = ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"];
  if (!path) return names;
  return [...names, ...names.map((n) => `${n}${path}`), ...names.map((n) => `${path}${n}`)];
}

export function metadata(as: AuthorizationServer): Record<string, unknown> {
  const base = as.issuer;
  const authMethods = ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"];
  const signingAlgs = [...ASSERTION_ALGORITHMS];
  return {
    issuer: base,
    authorization_endpoint: `${base}/authorize`,
    token_endpoint: `${base}/token`,
    jwks_uri: `${base}/jwks`,
    ...(as.parts.config.registration.enabled ? { registration_endpoint: `${base}/register` } : {}),
    revocation_endpoint: `${base}/revoke`,
    introspection_endpoint: `${base}/introspect`,
    device_authorization_endpoint: `${base}/device_authorization`,
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    grant_types_supported: as.tokenEndpoint.grantTypes,
    token_endpoint_auth_methods_supported: authMethods,
    token_endpoint_auth_signing_alg_values_supported: signingAlgs,
    revocation_endpoint_auth_methods_supported: authMethods,
    revocation_endpoint_auth_signing_alg_values_supported: signingAlgs,
    introspection_endpoint_auth_methods_supported: authMethods.filter((m) => m !== "none"),
    introspection_endpoint_auth_signing_alg_values_supported: signingAlgs,
    code_challenge_methods_supported: ["S256"],
    // offline_access is listed so that clients which add it when it is listed (SEP-2207) may.
    scopes_supported: [...new Set([...as.scopesSupported, OFFLINE_ACCESS])],
    client_id_metadata_document_supported: as.parts.config.cimd.enabled,
    authorization_response_iss_parameter_supported: true,
    service_documentation: "https://www.npmjs.com/package/mcp-oauth-gateway",
  };
}

export async function registerEndpoints(app: FastifyInstance, as: AuthorizationServer): Promise<void> {
  // One document, the same at every discovery URL: the issuer in it is the issuer, always.
  const document = JSON.stringify(metadata(as));
  const meta = (_req: FastifyRequest, reply: FastifyReply) =>
    reply
      .header("cache-control", "public, max-age=300")
      .type("application/json; charset=utf-8")
      .send(document);
  for (const path of metadataPaths(as.issuer)) app.get(path, meta);

  app.get("/jwks", (_req, reply) =>
    reply
      .header("cache-control", "public, max-age=300")

      .send(as.parts.keys.jwks()),
  );

  const limits = { bodyLimit: OAUTH_BODY_LIMIT };
  const brake = routeBrakes(as);

  app.post("/register", { ...limits, preHandler: brake.register }, async (request, reply) => {
    const type = request.headers["content-type"] ?? "";
    if (!type.toLowerCase().startsWith("application/json")) {
      throw new OAuthError("invalid_client_metadata", "the request body must be application/json");
    }
    const body = await as.registrar.register(request.body, bearer(request));
    return reply.code(201).headers(NO_STORE).send(body);
  });
  app.get<{ Params: { clientId: string } }>("/register/:clientId", async (request, reply) =>
    reply.headers(NO_STORE).send(await as.registrar.read(request.params.clientId, bearer(request))),
  );
  app.put<{ Params: { clientId: string } }>("/register/:clientId", limits, async (request, reply) =>
    reply
      .headers(NO_STORE)
      .send(await as.registrar.update(request.params.clientId, bearer(request), request.body)),
  );
  app.delete<{ Params: { clientId: string } }>("/register/:clientId", async (request, reply) => {
    await as.registrar.remove(request.params.clientId, bearer(request));
    return reply.code(204).send();
  });

  // The brakes are counted by the token endpoint rather than in a preHandler, so that their count
  // travels with the grant's store work (TokenEndpoint.handle); their verdict still comes first.
  app.post("/token", limits, async (request, reply) => {
    const brakes = brake.token(request);
    let form: Record<string, unknown>;
    try {
      form = requireForm(request);
    } catch (err) {
      await brakes.count();
      throw err;
    }
    const tokens = await as.tokenEndpoint.handle(form, request.headers.authorization, brakes);
    return reply.headers(NO_STORE).send(tokens);
  });
  app.post(
    "/device_authorization",
    { ...limits, preHandler: brake.deviceAuthorization },
    async (request, reply) => {
      const codes = await as.deviceAuthorization.handle(requireForm(request), request.headers.authorization);
      return reply.headers(NO_STORE).send(codes);
    },
  );
  app.post("/revoke", limits, async (request, reply) => {
    await as.revocationEndpoint.handle(requireForm(request), request.headers.authorization);
    return reply.headers(NO_STORE).send({});
  });
  app.post("/introspect", limits, async (request, reply) => {
    const answer = await as.introspectionEndpoint.handle(requireForm(request), request.headers.authorization);
    return reply.headers(NO_STORE).send(answer);
  });
}
