/** What every `mcp-gateway admin …` command shares: the configured store, and how it fails. */
import type { GatewayConfig } from "../config/schema.js";
import type { ClientRecord } from "../oauth/clients.js";
import { GrantStore } from "../oauth/grant-store.js";
import { Revoker } from "../oauth/revoker.js";
import { NO_AUDIT } from "../ops/audit.js";
import { openStore } from "../store/open.js";
import type { Store } from "../store/store.js";
import { Revocations } from "../tokens/revocations.js";
import { configOrExit } from "./load-config.js";

export type Opts = { config?: string };

/** Runs `fn` on the store `serve` would open with the same config, then closes it. */
export async function withStore<T>(
  opts: Opts,
  fn: (store: Store, config: GatewayConfig) => Promise<T>,
): Promise<T> {
  // What serve sees, the built-in services included: their resource URLs name grants' services.
  const { config } = await configOrExit({ file: opts.config, builtins: true });
  const store = await openStore(config);
  try {
    return await fn(store, config);
  } finally {
    await store.close();
  }
}

export const grantsOf = (store: Store, config: GatewayConfig) =>
  new GrantStore(store, { code: config.tokens.code_ttl, refresh: config.tokens.refresh_ttl });

/** The CLI prints what it did; the audit trail of admin actions is the shell's. */
export const revokerFor = (store: Store, config: GatewayConfig) =>
  new Revoker(
    store,
    new Revocations(store, 0, config.tokens.refresh_ttl),
    grantsOf(store, config),
    NO_AUDIT,
    { refresh: config.tokens.refresh_ttl, session: config.session.ttl },
  );

export function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

/** `--client X`: the client whose id is X, or whose name contains X (any case). */
export function clientMatches(
  client: Pick<ClientRecord, "client_id" | "client_name">,
  needle: string,
): boolean {
  if (client.client_id === needle) return true;
  return client.client_name?.toLowerCase().includes(needle.toLowerCase()) ?? false;
}
