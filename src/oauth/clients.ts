/**
 * Registered clients (namespace "clients", key = client_id). Secrets and registration access
 * tokens are stored as SHA-256 hashes only. A client expires with the configured client
 * lifetime (`registration.client_ttl`, 0 = never) and then disappears from the store by TTL.
 */
import type { JWK } from "jose";
import type { Store } from "../store/store.js";
import type { ApplicationType } from "./redirect-uri.js";

export type TokenEndpointAuthMethod =
  | "none"
  | "client_secret_basic"
  | "client_secret_post"
  | "private_key_jwt";

/** The methods that prove a secret the gateway issued (and keeps a hash of). */
const SECRET_METHODS: ReadonlySet<TokenEndpointAuthMethod> = new Set([
  "client_secret_basic",
  "client_secret_post",
]);

/** Client metadata (RFC 7591 §2) as the gateway keeps it. */
export interface ClientMetadata {
  redirect_uris: string[];
  token_endpoint_auth_method: TokenEndpointAuthMethod;
  /**
   * OIDC Registration §2: decides which redirect URIs are allowed; inferred from them when the
   * client sent none. Absent on records saved before it was kept, and on admin-made clients.
   */
  application_type?: ApplicationType;
  grant_types: string[];
  response_types: string[];
  client_name?: string;
  client_uri?: string;
  logo_uri?: string;
  scope?: string;
  contacts?: string[];
  tos_uri?: string;
  policy_uri?: string;
  software_id?: string;
  software_version?: string;
  /** private_key_jwt: the client's public keys, inline or by URL (exactly one of the two). */
  jwks?: { keys: JWK[] };
  jwks_uri?: string;
  /** private_key_jwt: the one algorithm its assertions use, when the client named one. */
  token_endpoint_auth_signing_alg?: string;
}

export interface ClientRecord extends ClientMetadata {
  client_id: string;
  client_secret_hash?: string;
  registration_token_hash?: string;
  /** Seconds since the epoch. */
  client_id_issued_at: number;
  /** Seconds since the epoch; 0 = never. */
  client_secret_expires_at: number;
  /** How the client came to be: dynamic registration, a metadata document, or the admin CLI. */
  source: "dcr" | "cimd" | "admin";
}

const NS = "clients";

export class ClientStore {
  constructor(private readonly store: Store) {}

  async get(clientId: string): Promise<ClientRecord | undefined> {
    return (await this.store.get(NS, clientId)) as ClientRecord | undefined;
  }

  /** Saves a client; it disappears at `client_secret_expires_at` unless that is 0. */
  async save(client: ClientRecord): Promise<void> {
    const ttl = client.client_secret_expires_at
      ? Math.max(1, client.client_secret_expires_at - Math.floor(Date.now() / 1000))
      : undefined;
    await this.store.put(NS, client.client_id, client as never, ttl);
  }

  async delete(clientId: string): Promise<boolean> {
    return this.store.delete(NS, clientId);
  }

  async list(): Promise<ClientRecord[]> {
    return (await this.store.list(NS)).map((e) => e.value as unknown as ClientRecord);
  }

  /** Whether the client authenticates at all (with a secret or a signed assertion). */
  static isConfidential(client: Pick<ClientMetadata, "token_endpoint_auth_method">): boolean {
    return client.token_endpoint_auth_method !== "none";
  }

  /** Whether the client authenticates with a secret the gateway issues (it gets one at registration). */
  static usesSecret(client: Pick<ClientMetadata, "token_endpoint_auth_method">): boolean {
    return SECRET_METHODS.has(client.token_endpoint_auth_method);
  }
}
