/**
 * The composition root: builds stores, keys, the identity provider, bridges and routes from a
 * config. Nothing else wires things together.
 */
import type { FastifyInstance, FastifyServerOptions } from "fastify";
import { CacheRegistry } from "./cache/ttl-cache.js";
import { type Cluster, startCluster } from "./cluster/index.js";
import { ResourceIndex } from "./config/resources.js";
import type { GatewayConfig } from "./config/schema.js";
import { resolveEncryptionSecret } from "./crypto/encryption-secret.js";
import { registerGateway, type UpstreamTarget } from "./gateway/index.js";
import { createHttpApp } from "./http/app.js";
import { announceDrain, serverDraining } from "./http/drain.js";
import type { Shortcuts } from "./http/server.js";
import { createIdentityProvider } from "./idp/create.js";
import type { IdentityProvider } from "./idp/idp.js";
import { registerAuthorizationServer } from "./oauth/http/plugin.js";
import { KeyRing } from "./oauth/keys.js";
import { AuthorizationServer } from "./oauth/server.js";
import { logAudit } from "./ops/audit.js";
import { loggerOptions } from "./ops/log-output.js";
import { type OpsListener, registerOps } from "./ops/routes.js";
import { openStore } from "./store/open.js";
import { type StartupWait, startupWait, untilStoreAnswers } from "./store/startup.js";
import type { Store } from "./store/store.js";
import { PublicKeySet } from "./tokens/key-set.js";
import { Revocations } from "./tokens/revocations.js";
import { startServiceUpstreams } from "./upstreams.js";

export interface BuildOptions {
  /** Use this store instead of opening the configured one (tests; the caller closes it). */
  store?: Store;
  /** fastify logger option; default: src/ops/log-output.ts (config.log_level, log_format). */
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
  /** service name -> how its upstream is reached (bridged stdio services: a unix socket). */
  upstreams: Map<string, UpstreamTarget>;
  /** The operations listener, when `ops.port` puts /healthz, /readyz and /metrics on their own. */
  ops?: OpsListener;
  /** Several instances (config `cluster`): the internal channel for bridged sessions. */
  cluster?: Cluster;
  /** The handlers ahead of fastify (src/http/server.ts); `taken` counts what they answered. */
  shortcuts: Shortcuts;
  /** Start-up's wait for the store, for what the caller still reads before serving (serve's first-run admin). */
  startup: StartupWait;
}

export async function buildGateway(config: GatewayConfig, options: BuildOptions = {}): Promise<Gateway> {
  // The one sealing secret (configured, or generated into data_dir), resolved before the store
  // is reached: Redis without an explicit one is refused here.
  const secret = resolveEncryptionSecret(config);
  // The app (and its logger) first: start-up reports here how it waits for the store.
  const { app, shortcuts, requests, clients } = createHttpApp(config, {
    logger: options.logger ?? (await loggerOptions(config, options.logStream)),
    bodyLimit: config.gateway.max_body,
    // Client ids in /register/{client_id} may be long (metadata document URLs are not, they are never managed here).
    routerOptions: { maxParamLength: 500 },
  });
  // A store that cannot answer yet delays start-up, up to store.startup_timeout (store/startup.ts).
  const wait = startupWait(config.store.startup_timeout, (fields, message) => app.log.warn(fields, message));
  const store = options.store ?? (await untilStoreAnswers(wait, "store connection", () => openStore(config)));
  let keys: KeyRing;
  let publicKeys: PublicKeySet;
  let unfollowRevocations: () => void;
  // Every cache, for /metrics; revocations published anywhere on the store end verdicts here.
  const caches = new CacheRegistry();
  const revocations = new Revocations(store, config.tokens.revocation_cache, config.tokens.refresh_ttl, {
    caches,
  });
  try {
    keys = await untilStoreAnswers(wait, "signing keys", () =>
      KeyRing.open(store, {
        alg: config.tokens.signing_alg,
        accessTtlSeconds: config.tokens.access_ttl,
        encryptionSecret: secret.value,
        secretSource: secret.source,
      }),
    );
    // The resource side verifies with public keys only; it reloads them when this instance rotates,
    // and when another one does (the store's change feed), and then the signer follows too.
    publicKeys = await untilStoreAnswers(wait, "public keys", () => PublicKeySet.open(store));
    unfollowRevocations = await untilStoreAnswers(wait, "revocation feed", () => revocations.follow());
  } catch (err) {
    if (!options.store) await store.close().catch(() => undefined);
    throw err;
  }
  keys.onRotate(() => void publicKeys.reload().catch(() => undefined));
  publicKeys.onChange(() => void keys.reload().catch(() => undefined));
  const resources = new ResourceIndex(config);
  const idp = await createIdentityProvider(config, store);

  const cluster = await startCluster(config, store, app.log, requests);
  let upstreams: Awaited<ReturnType<typeof startServiceUpstreams>>;
  try {
    upstreams = await startServiceUpstreams(config, app.log, cluster);
  } catch (err) {
    await cluster?.close();
    throw err;
  }
  cluster?.serve(upstreams.bridges);
  const audit = logAudit(app.log.child({ component: "audit" }));
  const as = new AuthorizationServer({
    config,
    store,
    keys,
    revocations,
    resources,
    idp,
    audit,
    // Refresh successors are sealed under the same secret as the signing keys.
    encryptionSecret: secret.value,
    caches,
  });
  // What an older version stored gets its owner-index entries (once per store), in the
  // background: a large store does not hold up the start; a revocation waits for it.
  as.revoker.prepare().catch((err: unknown) => app.log.warn({ err }, "owner index migration: will retry"));

  app.addHook("onClose", async () => {
    // Bridges first: their sessions end, and the cluster deletes their owner entries before the store closes.
    await upstreams.close();
    await cluster?.close();
    await as.close();
    keys.close();
    publicKeys.close();
    unfollowRevocations();
    if (!options.store) await store.close();
  });

  // The main listener's drain is what /readyz reports, wherever /readyz is served; its delay
  // is there for the readiness probes, which need that long to see it.
  announceDrain(app.server, config.drain_delay * 1000);
  const ops = await registerOps(app, {
    store,
    config,
    metrics: requests.metrics,
    caches,
    shortcuts,
    draining: () => serverDraining(app.server),
  });

  // The subtrees, one per trust zone, each with its own parsing and error shape.
  await registerAuthorizationServer(app, as);
  await registerGateway(app, {
    config,
    keys: publicKeys,
    revocations,
    resources,
    upstreams: upstreams.targets,
    audit,
    shortcuts,
    requests,
    clients,
    caches,
  });

  return { app, as, store, keys, idp, upstreams: upstreams.targets, ops, cluster, shortcuts, startup: wait };
}
