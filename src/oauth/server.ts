/**
 * The authorization server's parts, built from config in one place. No HTTP here: the
 * routes in http/ and the admin CLI both use this object.
 */
import type { CacheRegistry } from "../cache/ttl-cache.js";
import type { ResourceIndex } from "../config/resources.js";
import type { GatewayConfig } from "../config/schema.js";
import { serviceScopesSupported } from "../config/scopes.js";
import { newSecret } from "../crypto/secrets.js";
import type { IdentityProvider, UserIdentity } from "../idp/idp.js";
import { type Audit, NO_AUDIT } from "../ops/audit.js";
import type { Store } from "../store/store.js";
import type { Revocations } from "../tokens/revocations.js";
import { type AuthorizeDeps, authorizationResponseUrl } from "./authorize.js";
import { ClientMetadataDocuments } from "./cimd.js";
import { ClientAssertionVerifier } from "./client-assertion.js";
import { ClientAuthenticator } from "./client-auth.js";
import { type ClientRecord, ClientStore } from "./clients.js";
import { DeviceAuthorizationEndpoint } from "./device-authorization.js";
import { DeviceStore } from "./device-store.js";
import { GrantStore } from "./grant-store.js";
import { AuthorizationCodeGrant } from "./grants/authorization-code.js";
import { DeviceCodeGrant } from "./grants/device-code.js";
import type { EndGrant } from "./grants/grant.js";
import { RefreshTokenGrant } from "./grants/refresh-token.js";
import { Interactions, type PendingAuthorization } from "./interaction.js";
import { IntrospectionEndpoint } from "./introspect.js";
import { TokenIssuer } from "./issuer.js";
import type { KeyRing } from "./keys.js";
import { Liveness } from "./liveness.js";
import { redirectUriPolicy } from "./redirect-uri.js";
import { type MetadataRules, Registrar } from "./register.js";
import { RemoteJson } from "./remote-json.js";
import { RevocationEndpoint } from "./revoke.js";
import { Revoker } from "./revoker.js";
import { TokenEndpoint } from "./token.js";

/** The least time an authorization waits for its person to sign in and consent. */
const PENDING_MIN_SECONDS = 600;

export interface AuthorizationServerParts {
  config: GatewayConfig;
  store: Store;
  keys: KeyRing;
  revocations: Revocations;
  resources: ResourceIndex;
  idp: IdentityProvider;
  audit?: Audit;
  /**
   * The sealing secret (crypto/encryption-secret.ts: `keys.encryption_secret` or the generated
   * `{data_dir}/secret`), for the successor a refresh repeat gets inside the grace window.
   */
  encryptionSecret: string;
  /** Where /metrics finds the metadata document cache. */
  caches?: CacheRegistry;
}

export class AuthorizationServer {
  readonly issuer: string;
  readonly clients: ClientStore;
  readonly grants: GrantStore;
  readonly interactions: Interactions;
  readonly registrar: Registrar;
  readonly tokenEndpoint: TokenEndpoint;
  /** Device grant (RFC 8628): its requests, and the endpoint that starts them. */
  readonly devices: DeviceStore;
  readonly deviceAuthorization: DeviceAuthorizationEndpoint;
  readonly revocationEndpoint: RevocationEndpoint;
  readonly introspectionEndpoint: IntrospectionEndpoint;
  readonly authorizeDeps: AuthorizeDeps;
  readonly lookupClient: (clientId: string) => Promise<ClientRecord | undefined>;
  /** The client cache's change-feed subscription (ClientStore.follow). */
  private readonly followingClients: Promise<() => void>;
  readonly documents?: ClientMetadataDocuments;
  /** Finds and authenticates clients at /token, /revoke and /introspect. */
  readonly clientAuth: ClientAuthenticator;
  /** What registration and metadata documents are held to (redirect URIs, key URLs). */
  readonly metadataRules: MetadataRules;
  /** Fetches what clients name (metadata documents, jwks_uri) behind the SSRF guard. */
  private readonly remote: RemoteJson;
  readonly audit: Audit;
  /** Ends a grant: revokes its tokens, forgets it, and audits why. */
  readonly endGrant: EndGrant;
  readonly revoker: Revoker;
  /** Asks the identity provider again about a person, at refresh and on a reused session. */
  readonly liveness: Liveness;

  constructor(readonly parts: AuthorizationServerParts) {
    const { config, store, keys, revocations, resources, idp } = parts;
    this.issuer = config.public_url;
    this.audit = parts.audit ?? NO_AUDIT;
    // Client authentication (every /token request) reads records through a per-instance cache
    // that the change feed keeps current, bounded like revocations (tokens.revocation_cache).
    this.clients = new ClientStore(store, config.registration.unused_ttl, {
      seconds: config.tokens.revocation_cache,
      caches: parts.caches,
    });
    this.followingClients = this.clients.follow();
    this.followingClients.catch(() => undefined);
    this.remote = new RemoteJson({
      timeoutSeconds: config.cimd.timeout,
      maxCacheSeconds: config.cimd.max_cache,
      allowPrivateAddresses: config.cimd.allow_private_addresses,
    });
    this.metadataRules = {
      redirect: redirectUriPolicy(config.registration.allowed_schemes),
      fetchable: (url) => this.remote.isFetchable(url),
    };
    this.documents = config.cimd.enabled
      ? new ClientMetadataDocuments(
          { maxBytes: config.cimd.max_bytes },
          this.remote,
          this.metadataRules,
          parts.caches,
        )
      : undefined;
    // Registered clients first; an https client_id names a metadata document (when enabled).
    this.lookupClient = async (id) => {
      if (this.documents?.isDocumentUrl(id)) return this.documents.resolve(id);
      return this.clients.get(id);
    };
    this.clientAuth = new ClientAuthenticator(
      async (id) => {
        if (this.documents?.isDocumentUrl(id)) return this.documents.resolve(id);
        return this.clients.cached(id);
      },
      new ClientAssertionVerifier({ store, remote: this.remote, issuer: this.issuer, caches: parts.caches }),
      this.issuer,
      (id) => this.documents?.isDocumentUrl(id) ?? false,
    );
    this.grants = new GrantStore(
      store,
      { code: config.tokens.code_ttl, refresh: config.tokens.refresh_ttl },
      {
        graceSeconds: config.tokens.refresh_reuse_grace,
        sealingSecret: parts.encryptionSecret,
      },
    );
    this.interactions = new Interactions(store, {
      // A person needs time to sign in, however short-lived the codes are.
      pending: Math.max(config.tokens.code_ttl * 2, PENDING_MIN_SECONDS),
      session: config.session.ttl,
      consent: config.tokens.refresh_ttl,
    });
    this.revoker = new Revoker(store, revocations, this.grants, this.audit, {
      refresh: config.tokens.refresh_ttl,
      session: config.session.ttl,
    });
    this.endGrant = this.revoker.endGrant;
    this.liveness = new Liveness(store, idp, this.revoker, this.audit, parts.encryptionSecret, {
      intervalSeconds: config.idp.recheck,
      graceSeconds: config.idp.recheck_grace,
      credentialTtlSeconds: config.tokens.refresh_ttl,
    });
    const minter = new TokenIssuer(keys, this.issuer, config.tokens.access_ttl, this.audit);
    this.registrar = new Registrar(
      this.clients,
      {
        enabled: config.registration.enabled,
        initialAccessToken: config.registration.initial_access_token,
        clientTtlSeconds: config.registration.client_ttl,
        issuer: this.issuer,
        rules: this.metadataRules,
      },
      (clientId) => this.revoker.revokeClient(clientId),
      this.audit,
    );
    this.devices = new DeviceStore(store, {
      ttl: config.tokens.device_code_ttl,
      interval: config.tokens.device_poll_interval,
    });
    this.tokenEndpoint = new TokenEndpoint(
      [
        new AuthorizationCodeGrant(this.grants, minter, this.endGrant),
        new DeviceCodeGrant(this.devices, this.grants, minter, this.endGrant),
        new RefreshTokenGrant(this.grants, minter, revocations, this.endGrant, {
          checkAccess: (user) => idp.checkAccess(user),
          confirm: (user, checkedAt) => this.liveness.confirm(user, checkedAt, "refresh"),
          freshSince: () => this.liveness.freshSince(),
        }),
      ],
      this.clientAuth,
      (client) => this.clients.markUsed(client),
    );
    const endpointDeps = {
      keys,
      issuer: this.issuer,
      grants: this.grants,
      revocations,
      endGrant: this.endGrant,
      audit: this.audit,
      clients: this.clientAuth,
      introspectors: new Set(config.introspection.allowed_clients),
    };
    this.revocationEndpoint = new RevocationEndpoint(endpointDeps);
    this.introspectionEndpoint = new IntrospectionEndpoint(endpointDeps);

    const serviceScopes = new Map(
      Object.entries(config.services)
        .filter(([, s]) => s.enabled)
        .map(([n, s]) => [n, s.scopes]),
    );
    this.authorizeDeps = {
      lookupClient: this.lookupClient,
      resources,
      // Tool scopes are known too (asked for by step-up), but never granted by default.
      knownScopes: new Set(
        Object.values(config.services)
          .filter((s) => s.enabled)
          .flatMap((s) => serviceScopesSupported(s)),
      ),
      scopesFor: (requested) => {
        const names = requested.length
          ? requested.map((r) => resources.serviceFor(r)).filter((n): n is string => Boolean(n))
          : [...serviceScopes.keys()];
        return [...new Set(names.flatMap((n) => serviceScopes.get(n) ?? []))];
      },
    };
    this.deviceAuthorization = new DeviceAuthorizationEndpoint({
      issuer: this.issuer,
      devices: this.devices,
      clients: this.clientAuth,
      access: this.authorizeDeps,
      audit: this.audit,
    });
  }

  /** Every scope a client can be granted, for metadata. */
  get scopesSupported(): string[] {
    return [...this.authorizeDeps.knownScopes];
  }

  /** Ends a pending authorization with a fresh code; returns the redirect back to the client. */
  async issueCode(
    pending: PendingAuthorization,
    user: UserIdentity,
    authTime: number,
    /** When the provider last vouched for the user (a reused session's re-check), if not at authTime. */
    checkedAt = authTime,
  ): Promise<string | undefined> {
    if (!(await this.interactions.finishPending(pending.id))) return undefined;
    const code = newSecret();
    await this.grants.saveCode(code, {
      client_id: pending.client_id,
      redirect_uri: pending.redirect_uri,
      code_challenge: pending.code_challenge,
      scope: pending.scope,
      resources: pending.resources,
      user,
      auth_time: authTime,
      checked_at: checkedAt,
    });
    return authorizationResponseUrl(pending.redirect_uri, this.issuer, { code, state: pending.state });
  }

  async close(): Promise<void> {
    await this.followingClients.then((unfollow) => unfollow()).catch(() => undefined);
    await this.remote.close();
  }
}
