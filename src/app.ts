/**
 * The composition root: builds stores, keys, the identity provider, bridges and routes from a
 * config. Nothing else wires things together.
 */
import formbody from "@fastify/formbody";
import type { FastifyError, FastifyInstance, FastifyServerOptions } from "fastify";
import { ResourceIndex } from "./config/resources.js";
import type { GatewayConfig } from "./config/schema.js";
import { registerGateway } from "./gateway/index.js";
import { createHttpApp } from "./http/app.js";
import { createIdentityProvider } from "./idp/create.js";
import type { IdentityProvider } from "./idp/idp.js";
import { OAuthError } from "./oauth/errors.js";
import { registerMachineCors } from "./oauth/http/cors.js";
import { registerEndpoints } from "./oauth/http/endpoints.js";
import { registerInteractionRoutes } from "./oauth/http/interaction-routes.js";
import { KeyRing } from "./oauth/keys.js";
import { AuthorizationServer } from "./oauth/server.js";
import { logAudit } from "./ops/audit.js";
import { registerOps } from "./ops/routes.js";
import { openStore } from "./store/open.js";
import { Revocations } from "./store/revocations.js";
import type { Store } from "./store/store.js";
import { startServiceUpstreams } from "./upstreams.js";

export interface BuildOptions {
  /** Use this store instead of opening the configured one (tests; the caller closes it). */
  store?: Store;
  /** fastify logger option; defaults to pino at config.log_level with secrets redacted. */
  logger?: FastifyServerOptions["logger"];
  /** Send the default logger's lines here instead of stdout (tests that read the log). */
  logStream?: { write(line: string): void };
}

export interface Gateway {
  app: FastifyInstance;
  as: AuthorizationServer;
  store: Store;
  keys: KeyRing;
  idp: IdentityProvider;
  /** service name -> upstream URL (bridged stdio services included). */
  upstreams: Map<string, string>;
}

/** What may appear in a log line about a request: never a query string (codes), never a header. */
const requestSerializer = (req: { method: string; url: string; ip?: string }) => ({
  method: req.method,
  path: req.url.split("?")[0],
  ip: req.ip,
});

export async function buildGateway(config: GatewayConfig, options: BuildOptions = {}): Promise<Gateway> {
  const store = options.store ?? (await openStore(config));
  const keys = await KeyRing.open(store, {
    alg: config.tokens.signing_alg,
    accessTtlSeconds: config.tokens.access_ttl,
    encryptionSecret: config.keys.encryption_secret,
  });
  const revocations = new Revocations(store, config.tokens.revocation_cache, config.tokens.refresh_ttl);
  const resources = new ResourceIndex(config);
  const idp = await createIdentityProvider(config, store);

  const { app, shortcuts, requests } = createHttpApp(config, {
    logger: options.logger ?? {
      level: config.log_level,
      serializers: { req: requestSerializer },
      redact: ["req.headers.authorization", "req.headers.cookie", "res.headers['set-cookie']"],
      ...(options.logStream ? { stream: options.logStream } : {}),
    },
    bodyLimit: config.gateway.max_body,
    // Client ids in /register/{client_id} may be long (metadata document URLs are not, they are never managed here).
    routerOptions: { maxParamLength: 500 },
  });

  const upstreams = await startServiceUpstreams(config, app.log);
  const audit = logAudit(app.log.child({ component: "audit" }));
  const as = new AuthorizationServer({ config, store, keys, revocations, resources, idp, audit });

  app.addHook("onClose", async () => {
    await upstreams.close();
    await as.close();
    keys.close();
    if (!options.store) await store.close();
  });

  await registerOps(app, { store, config, metrics: requests.metrics });

  // The authorization server: its own subtree with OAuth-shaped errors.
  await app.register(async (sub) => {
    await sub.register(formbody);
    sub.setErrorHandler((error: FastifyError, request, reply) => {
      if (error instanceof OAuthError) {
        if (request.url.startsWith("/token")) {
          const body = (request.body ?? {}) as Record<string, unknown>;
          audit.emit({
            type: "token.refused",
            grant_type: typeof body.grant_type === "string" ? body.grant_type : undefined,
            client_id: typeof body.client_id === "string" ? body.client_id : undefined,
            error: error.code,
            description: error.description,
          });
        }
        return reply
          .code(error.status)
          .headers(error.headers)
          .header("cache-control", "no-store")
          .send(error.toJSON());
      }
      const status = error.statusCode ?? 500;
      if (status >= 500) {
        request.log.error({ err: error }, "authorization server error");
        return reply
          .code(500)
          .send({ error: "server_error", error_description: "the server could not handle the request" });
      }
      // Framework refusals (body too large, bad JSON, wrong content type) in OAuth's words.
      const code = request.url.startsWith("/register") ? "invalid_client_metadata" : "invalid_request";
      return reply.code(status).send({ error: code, error_description: describeFrameworkError(error) });
    });
    registerMachineCors(sub);
    await registerEndpoints(sub, as);
    await registerInteractionRoutes(sub, as);
  });

  await registerGateway(app, {
    config,
    keys,
    revocations,
    resources,
    upstreams: upstreams.urls,
    audit,
    shortcuts,
    requests,
  });

  return { app, as, store, keys, idp, upstreams: upstreams.urls };
}

function describeFrameworkError(error: FastifyError): string {
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return "the request body is too large";
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return "unsupported content type";
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return "the JSON body is empty";
    default:
      return error.code === "FST_ERR_CTP_INVALID_JSON_BODY" || error instanceof SyntaxError
        ? "the body is not valid JSON"
        : "the request is malformed";
  }
}
