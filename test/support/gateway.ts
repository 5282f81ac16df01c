/**
 * A running gateway for resource-side tests: fastify + registerGateway over a real SQLite
 * store (in memory), listening on 127.0.0.1. The authorization server is not mounted; tokens
 * come from mint.ts with a real KeyRing on the same store, and the gateway verifies them as in
 * production, with a PublicKeySet read from that store (public keys only).
 */
import type { FastifyInstance } from "fastify";
import { validateConfig } from "../../src/config/load.js";
import { ResourceIndex } from "../../src/config/resources.js";
import type { GatewayConfig } from "../../src/config/schema.js";
import type { UpstreamTarget } from "../../src/gateway/index.js";
import { registerGateway } from "../../src/gateway/plugin.js";
import { createHttpApp } from "../../src/http/app.js";
import type { Shortcuts } from "../../src/http/server.js";
import { KeyRing } from "../../src/oauth/keys.js";
import type { Audit } from "../../src/ops/audit.js";
import type { RequestLog } from "../../src/ops/request-log.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { PublicKeySet } from "../../src/tokens/key-set.js";
import { Revocations } from "../../src/tokens/revocations.js";
import { remoteUpstream } from "../../src/upstreams.js";
import { type MintClaims, type MintOptions, mintAccessToken } from "./mint.js";
import { freePort } from "./upstream.js";

export interface TestGateway {
  /** http://127.0.0.1:{port}, also the configured public_url unless one was given. */
  url: string;
  port: number;
  config: GatewayConfig;
  app: FastifyInstance;
  keys: KeyRing;
  revocations: Revocations;
  store: SqliteStore;
  resources: ResourceIndex;
  /** What both lanes record: metrics of every answered request. */
  requests: RequestLog;
  /** The handlers ahead of fastify; `shortcuts.taken` says how many requests they answered. */
  shortcuts: Shortcuts;
  /** A token for `service` (its path-routing resource URL as audience) unless `aud` is given. */
  token(service: string, claims?: Partial<MintClaims>, options?: MintOptions): Promise<string>;
  close(): Promise<void>;
}

/**
 * `config` is a config tree as in gateway.yaml (services with `url`); `public_url` defaults to
 * the gateway's own address. `audit` receives the resource side's audit events.
 */
export async function startGateway(
  config: Record<string, unknown>,
  options: { audit?: Audit } = {},
): Promise<TestGateway> {
  const port = await freePort();
  const parsed = validateConfig({ public_url: `http://127.0.0.1:${port}`, log_level: "silent", ...config });
  const store = new SqliteStore(":memory:");
  const keys = await KeyRing.open(store, {
    alg: parsed.tokens.signing_alg,
    accessTtlSeconds: parsed.tokens.access_ttl,
    encryptionSecret: "resource-side test harness secret",
  });
  const publicKeys = await PublicKeySet.open(store);
  keys.onRotate(() => void publicKeys.reload());
  const revocations = new Revocations(store, parsed.tokens.revocation_cache, parsed.tokens.refresh_ttl);
  const resources = new ResourceIndex(parsed);
  const upstreams = new Map<string, UpstreamTarget>();
  for (const [name, service] of Object.entries(parsed.services)) {
    if (service.enabled && service.url) upstreams.set(name, remoteUpstream(name, service));
  }
  // Built on the same HTTP app as buildGateway: the /verify shortcut ahead of fastify.
  const { app, shortcuts, requests, clients } = createHttpApp(parsed, { logger: false });
  await registerGateway(app, {
    config: parsed,
    keys: publicKeys,
    revocations,
    resources,
    upstreams,
    audit: options.audit,
    shortcuts,
    requests,
    clients,
  });
  await app.listen({ port, host: "127.0.0.1" });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    config: parsed,
    app,
    keys,
    revocations,
    store,
    resources,
    requests,
    shortcuts,
    token: (service, claims = {}, options = {}) =>
      mintAccessToken(
        keys,
        { iss: parsed.public_url, aud: `${parsed.public_url}/${service}/mcp`, ...claims },
        options,
      ),
    async close() {
      await app.close();
      keys.close();
      publicKeys.close();
      await store.close();
    },
  };
}
