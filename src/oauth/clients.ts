/**
 * Registered clients (namespace "clients", key = client_id). Secrets and registration access
 * tokens are stored as SHA-256 hashes only. A client expires with the configured client
 * lifetime (`registration.client_ttl`, 0 = never) and then disappears from the store by TTL.
 */
import type { Store } from "../store/store.js";

export type TokenEndpointAuthMethod = "none" | "client_secret_basic" | "client_secret_post";

/** Client metadata (RFC 7591 §2) as the gateway keeps it. */
export interface ClientMetadata {
  redirect_uris: string[];
  token_endpoint_auth_method: TokenEndpointAuthMethod;
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

  /** Whether the client must prove a secret at the token endpoint. */
  static isConfidential(client: ClientMetadata): boolean {
    return client.token_endpoint_auth_method !== "none";
  }
}
