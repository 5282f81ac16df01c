/**
 * Picks and builds the identity provider named by `idp.type`. The only place that knows all
 * three; the rest of the gateway sees the IdentityProvider interface.
 */
import type { GatewayConfig } from "../config/schema.js";
import type { Store } from "../store/store.js";
import { GitHubIdentityProvider } from "./github.js";
import type { IdentityProvider } from "./idp.js";
import { LocalIdentityProvider, LocalUsers } from "./local.js";
import { OidcIdentityProvider } from "./oidc.js";

/**
 * Builds the configured provider. Throws ConfigError for missing settings (naming the key),
 * and IdpError when an OIDC issuer's discovery document cannot be read.
 */
export async function createIdentityProvider(config: GatewayConfig, store: Store): Promise<IdentityProvider> {
  switch (config.idp.type) {
    case "local":
      return new LocalIdentityProvider(new LocalUsers(store));
    case "github":
      return new GitHubIdentityProvider(config.idp.github);
    case "oidc":
      return OidcIdentityProvider.discover(config.idp.oidc);
  }
}
