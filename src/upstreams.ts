/**
 * Where each enabled service is reached: its configured `url` (with the upstream's own bearer,
 * if it needs one), or a stdio server bridged in this process to a unix socket that only this
 * user can open (so bridged and remote services share one proxy path, and nothing else on the
 * machine reaches a bridged child without the gateway).
 */
import type { FastifyBaseLogger } from "fastify";
import { type BridgeOptions, type RunningBridge, SocketDir, startBridge } from "./bridge/index.js";
import { readSecretFile } from "./bridge/secret-file.js";
import type { Cluster } from "./cluster/index.js";
import type { GatewayConfig, ServiceConfig } from "./config/schema.js";
import type { UpstreamTarget } from "./gateway/index.js";

export interface ServiceUpstreams {
  /** service name -> how the proxy reaches it. */
  targets: Map<string, UpstreamTarget>;
  bridges: Map<string, RunningBridge>;
  close(): Promise<void>;
}

/** How a stdio service's config becomes a bridge: the one mapping, for serve and the tests. */
export function bridgeOptions(service: ServiceConfig): BridgeOptions {
  return {
    command: service.command as string,
    args: service.args,
    env: service.env,
    cwd: service.cwd,
    sessionMode: service.session_mode,
    maxSessions: service.max_sessions,
    idleTimeoutSeconds: service.idle_timeout,
    requestTimeoutSeconds: service.request_timeout,
  };
}

/** A `url:` service's upstream; `upstream_bearer_file` is read once, here, at start-up. */
export function remoteUpstream(name: string, service: ServiceConfig): UpstreamTarget {
  const url = service.url as string;
  if (!service.upstream_bearer_file) return { url };
  try {
    return { url, bearer: readSecretFile(service.upstream_bearer_file) };
  } catch (err) {
    throw new Error(`services.${name}.upstream_bearer_file: ${(err as Error).message}`);
  }
}

export async function startServiceUpstreams(
  config: GatewayConfig,
  log: FastifyBaseLogger,
  /** Several instances: bridged sessions are recorded and found through it. */
  cluster?: Cluster,
): Promise<ServiceUpstreams> {
  const targets = new Map<string, UpstreamTarget>();
  const bridges = new Map<string, RunningBridge>();
  let sockets: SocketDir | undefined;
  const close = async () => {
    await Promise.allSettled([...bridges.values()].map((b) => b.close()));
    sockets?.remove();
  };
  // The gateway names the caller in these headers, from the verified token: sessions are theirs.
  const names = config.gateway.identity_headers;
  const identityHeaders = { userId: names.user_id, clientId: names.client_id };
  try {
    for (const [name, service] of Object.entries(config.services)) {
      if (!service.enabled) continue;
      if (service.url) {
        targets.set(name, remoteUpstream(name, service));
        continue;
      }
      if (!service.command) continue;
      sockets ??= SocketDir.create();
      const bridge = await startBridge({
        ...bridgeOptions(service),
        socketPath: sockets.socketFor(name),
        identityHeaders,
        maxBodyBytes: config.gateway.max_body,
        placement: cluster?.placementFor(name),
        logger: log.child({ service: name }),
      });
      bridges.set(name, bridge);
      targets.set(name, { url: bridge.url, socketPath: bridge.socketPath });
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { targets, bridges, close };
}
