/**
 * Several gateway instances on one store (README, "Several instances"). Everything the
 * authorization server and the token check keep is in the store already, so any instance
 * answers any of it. What is not: a bridged stdio session, which lives with the child its
 * instance spawned. The cluster records each session's owner (owners.ts), relays requests that
 * land elsewhere to it (relay.ts) over an internal listener only holders of the cluster secret
 * can use (channel.ts: requests signed with a key derived from the cluster secret, signature.ts), and renews the records while the sessions live.
 */
import type { Server } from "node:http";
import type { FastifyBaseLogger } from "fastify";
import type { RunningBridge, SessionPlacement } from "../bridge/index.js";
import { readSecretFile } from "../bridge/secret-file.js";
import { ConfigError } from "../config/load.js";
import type { GatewayConfig } from "../config/schema.js";
import type { Store } from "../store/store.js";
import { ClusterChannel, type RelayedAccessLog } from "./channel.js";
import { SessionOwners } from "./owners.js";
import { OwnerRelay } from "./relay.js";
import { relayKey } from "./signature.js";

export interface Cluster {
  /** This instance's advertise_url. */
  readonly advertiseUrl: string;
  /** Where the internal listener listens (host:port), once listening. */
  readonly listening: string;
  /** The internal listener (drained on shutdown like the main one). */
  readonly server: Server;
  /** The placement for one bridged service's sessions. */
  placementFor(service: string): SessionPlacement;
  /** The running bridges: relayed requests go to them, and their sessions' records are renewed. */
  serve(bridges: Map<string, RunningBridge>): void;
  /** Stop the internal listener and the renewals; wait for the last record writes and deletes. */
  close(): Promise<void>;
}

interface Settings {
  secret: string;
  advertiseUrl: string;
  host: string;
  port: number;
  basePath: string;
}

function settings(config: GatewayConfig): Settings | undefined {
  const c = config.cluster;
  if (!c.secret && !c.secret_file) return undefined;
  if (config.store.type !== "redis") {
    throw new ConfigError("config: cluster needs store.type redis (every instance on one store)");
  }
  let secret = c.secret;
  if (c.secret_file) {
    try {
      secret = readSecretFile(c.secret_file);
    } catch (err) {
      throw new ConfigError(`config: cluster.secret_file: ${(err as Error).message}`);
    }
    if (secret.length < 32) throw new ConfigError("config: cluster.secret_file: use at least 32 characters");
  }
  if (!secret || /\s/.test(secret)) throw new ConfigError("config: cluster.secret: no spaces or line breaks");
  const url = new URL(c.advertise_url as string);
  const port = c.port ?? (url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80);
  const host = c.host ?? url.hostname.replace(/^\[|\]$/g, "");
  return {
    secret,
    advertiseUrl: url.href.replace(/\/+$/, ""),
    host,
    port,
    basePath: url.pathname.replace(/\/+$/, ""),
  };
}

/** Starts the internal listener when the config sets a cluster secret; undefined otherwise. */
export async function startCluster(
  config: GatewayConfig,
  store: Store,
  log: FastifyBaseLogger,
  /** The app's request log: relayed requests served here get their access line there. */
  requests?: RelayedAccessLog,
): Promise<Cluster | undefined> {
  const s = settings(config);
  if (!s) return undefined;
  const clusterLog = log.child({ component: "cluster" });
  const ttl = Math.max(3, config.cluster.session_ttl);
  const owners = new SessionOwners(store, s.advertiseUrl, ttl, clusterLog);
  const relay = new OwnerRelay(owners, relayKey(s.secret), {
    headersTimeoutSeconds: config.gateway.upstream_timeout,
    log: clusterLog,
  });
  const channel = new ClusterChannel({
    ...s,
    maxBodyBytes: config.gateway.max_body,
    log: clusterLog,
    requests,
  });
  const listening = await channel.listen();
  let bridges = new Map<string, RunningBridge>();

  // Renew a third of the way into the TTL: two renewals can fail before an entry lapses.
  const renewer = setInterval(
    () => {
      for (const [service, bridge] of bridges) {
        owners
          .renew(service, bridge.sessionIds())
          .catch((err: Error) =>
            clusterLog.warn({ err: err.message, service }, "session owner entries not renewed"),
          );
      }
    },
    Math.max(1000, (ttl * 1000) / 3),
  );
  renewer.unref();

  return {
    advertiseUrl: s.advertiseUrl,
    listening,
    server: channel.httpServer,
    placementFor: (service) => ({
      opened: (id) => owners.claim(service, id),
      ended: (id) => owners.release(service, id),
      relay: (id, req, res, body) => relay.relay(service, id, req, res, body),
    }),
    serve(running) {
      bridges = running;
      channel.serve(running);
    },
    async close() {
      clearInterval(renewer);
      await channel.close();
      await relay.close();
      await owners.settle();
    },
  };
}
