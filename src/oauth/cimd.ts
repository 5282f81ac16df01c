/**
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, MCP 2025-11-25):
 * a client_id that is an https URL names a JSON document describing the client. The gateway
 * fetches it through RemoteJson (size and time limits, never from private/loopback/link-local
 * addresses), caches it by its HTTP caching headers (a TtlCache, src/cache/), and requires that the document's
 * `client_id` is the URL itself. A document may declare `private_key_jwt` with `jwks` or
 * `jwks_uri` (ChatGPT's do); its assertions are checked by client-assertion.ts.
 */
import { type CacheRegistry, TtlCache } from "../cache/ttl-cache.js";
import type { ClientRecord } from "./clients.js";
import { OAuthError } from "./errors.js";
import { type MetadataRules, parseClientMetadata } from "./register.js";
import { type RemoteJson, RemoteJsonError } from "./remote-json.js";

export interface CimdOptions {
  maxBytes: number;
}

/** Bound on cached documents, so a flood of distinct client_ids cannot grow memory without limit. */
const MAX_CACHED = 1000;

/**
 * Authentication methods a document may declare: `none`, or `private_key_jwt` with its keys
 * (draft §4.1: there is no shared secret between a document's client and the server).
 */
const DOCUMENT_AUTH_METHODS = new Set(["none", "private_key_jwt"]);

const fail = (description: string) => new OAuthError("invalid_client", description, { status: 400 });

export class ClientMetadataDocuments {
  private readonly cache: TtlCache<ClientRecord>;

  constructor(
    private readonly options: CimdOptions,
    private readonly remote: RemoteJson,
    private readonly rules: MetadataRules,
    /** Where /metrics finds the document cache. */
    caches?: CacheRegistry,
  ) {
    this.cache = new TtlCache<ClientRecord>("cimd", MAX_CACHED, { registry: caches });
  }

  /** Whether a client_id is a metadata document URL rather than a registered id. */
  isDocumentUrl(clientId: string): boolean {
    return this.remote.isFetchable(clientId);
  }

  /** The client a document URL describes; throws invalid_client with a readable reason. */
  async resolve(clientId: string): Promise<ClientRecord> {
    const cached = this.cache.get(clientId);
    if (cached) return cached;
    const url = this.checkUrl(clientId);
    let fetched: Awaited<ReturnType<RemoteJson["fetch"]>>;
    try {
      fetched = await this.remote.fetch(url, "client metadata document", this.options.maxBytes);
    } catch (err) {
      if (err instanceof RemoteJsonError) throw fail(err.message);
      throw err;
    }
    const client = this.toClient(clientId, fetched.document);
    this.cache.set(clientId, client, fetched.cacheSeconds * 1000);
    return client;
  }

  private checkUrl(clientId: string): URL {
    let url: URL;
    try {
      url = new URL(clientId);
    } catch {
      throw fail("client_id is not a valid URL");
    }
    if (url.username || url.password) throw fail("a client_id URL must not contain credentials");
    if (clientId.includes("#")) throw fail("a client_id URL must not contain a fragment");
    if (url.pathname === "/" || url.pathname === "") throw fail("a client_id URL must have a path");
    if (/\/\.\.?(\/|$)/.test(clientId.split("?")[0] ?? ""))
      throw fail("a client_id URL must not contain dot segments");
    return url;
  }

  private toClient(clientId: string, document: unknown): ClientRecord {
    if (typeof document !== "object" || document === null || Array.isArray(document)) {
      throw fail("the client metadata document must be a JSON object");
    }
    const doc = document as Record<string, unknown>;
    if (doc.client_id !== clientId) throw fail("the document's client_id does not match its URL");
    if (doc.client_secret !== undefined || doc.client_secret_expires_at !== undefined) {
      throw fail("a client metadata document must not carry a client secret");
    }
    const method = doc.token_endpoint_auth_method ?? "none";
    if (typeof method !== "string" || !DOCUMENT_AUTH_METHODS.has(method)) {
      throw fail(
        `token_endpoint_auth_method ${String(method)} is not supported for metadata documents; use none or private_key_jwt`,
      );
    }
    let metadata: ReturnType<typeof parseClientMetadata>;
    try {
      metadata = parseClientMetadata({ ...doc, token_endpoint_auth_method: method }, this.rules);
    } catch (err) {
      throw fail(
        `the client metadata document is invalid: ${(err as OAuthError).description ?? (err as Error).message}`,
      );
    }
    return {
      ...metadata,
      client_id: clientId,
      client_id_issued_at: Math.floor(Date.now() / 1000),
      client_secret_expires_at: 0,
      source: "cimd",
    };
  }
}
