/**
 * The fastify instance a gateway runs on, wired the one way both lanes need: shortcuts taking
 * requests ahead of fastify (src/http/server.ts), and one request log (metrics and access line)
 * that fastify's hooks and the shortcuts both write to. buildGateway and the resource-side test
 * harness both start from here, so they cannot drift apart.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import type { GatewayConfig } from "../config/schema.js";
import { OneLinePerRequest, RequestIds, RequestLog } from "../ops/request-log.js";
import { ClientAddresses } from "./client-address.js";
import { Shortcuts } from "./server.js";

export interface HttpApp {
  app: FastifyInstance;
  shortcuts: Shortcuts;
  requests: RequestLog;
  /** Who sent each request, as `trust_proxy` lets the gateway believe it. */
  clients: ClientAddresses;
}

/** `options` are fastify's own (logger, limits); server, log controller and trustProxy come from here. */
export function createHttpApp(config: GatewayConfig, options: FastifyServerOptions): HttpApp {
  const clients = new ClientAddresses(config.trust_proxy);
  const shortcuts = new Shortcuts(clients);
  // One id sequence for fastify's requests and the shortcuts' (their access lines carry it).
  const ids = new RequestIds();
  const app = Fastify({
    ...options,
    genReqId: ids.next,
    serverFactory: shortcuts.serverFactory,
    // One access-log line per request, the same for fastify and the shortcuts.
    logController: new OneLinePerRequest(config.log_requests, clients),
    // The same trust function as `clients`, so fastify's request.ip (the login brake's) agrees.
    trustProxy: clients.trust ?? false,
    // Shutdown must not wait for long-lived SSE streams; clients reconnect to another instance.
    forceCloseConnections: true,
  });
  shortcuts.onError = (err) => app.log.error({ err }, "shortcut failed; fastify answers instead");
  const requests = new RequestLog(app.log, clients, config.log_requests, ids);
  requests.attach(app);
  return { app, shortcuts, requests, clients };
}
