/**
 * Where each enabled service is reached: its configured `url`, or a stdio server bridged to a
 * loopback URL in this process (so bridged and remote services share one proxy path).
 */
import type { FastifyBaseLogger } from "fastify";
import { type BridgeOptions, type RunningBridge, startBridge } from "./bridge/index.js";
import type { GatewayConfig, ServiceConfig } from "./config/schema.js";

export interface ServiceUpstreams {
  urls: Map<string, string>;
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

export async function startServiceUpstreams(
  config: GatewayConfig,
  log: FastifyBaseLogger,
): Promise<ServiceUpstreams> {
  const urls = new Map<string, string>();
  const bridges = new Map<string, RunningBridge>();
  const close = async () => {
    await Promise.allSettled([...bridges.values()].map((b) => b.close()));
  };
  try {
    for (const [name, service] of Object.entries(config.services)) {
      if (!service.enabled) continue;
      if (service.url) {
        urls.set(name, service.url);
        continue;
      }
      if (!service.command) continue;
      const serviceLog = log.child({ service: name });
      const bridge = await startBridge({
        ...bridgeOptions(service),
        maxBodyBytes: config.gateway.max_body,
        logger: serviceLog,
      });
      bridges.set(name, bridge);
      urls.set(name, bridge.url);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { urls, bridges, close };
}
