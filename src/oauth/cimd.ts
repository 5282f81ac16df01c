/**
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, MCP 2025-11-25):
 * a client_id that is an https URL names a JSON document describing the client. The gateway
 * fetches it with size and time limits, never from private/loopback/link-local addresses
 * (checked at connect time, after DNS), caches it by its HTTP caching headers, and requires
 * that the document's `client_id` is the URL itself.
 */
import { Agent, request } from "undici";
import { assertLiteralHostAllowed, guardedLookup } from "../net/ssrf.js";
import type { ClientRecord } from "./clients.js";
import { OAuthError } from "./errors.js";
import { parseClientMetadata } from "./register.js";

export interface CimdOptions {
  timeoutSeconds: number;
  maxBytes: number;
  /** Upper bound on caching, whatever the document's headers say. */
  maxCacheSeconds: number;
  /** Tests on loopback only: allow private addresses, and plain http on loopback hosts. */
  allowPrivateAddresses: boolean;
}

/** Without caching headers a document is reused for this long. */
const DEFAULT_CACHE_SECONDS = 300;
/** Bound on cached documents, so a flood of distinct client_ids cannot grow memory without limit. */
const MAX_CACHED = 1000;

const fail = (description: string) => new OAuthError("invalid_client", description, { status: 400 });

export class ClientMetadataDocuments {
  private readonly cache = new Map<string, { client: ClientRecord; until: number }>();
  private readonly agent: Agent;

  constructor(private readonly options: CimdOptions) {
    this.agent = new Agent({
      connect: options.allowPrivateAddresses ? {} : { lookup: guardedLookup() },
      headersTimeout: options.timeoutSeconds * 1000,
      bodyTimeout: options.timeoutSeconds * 1000,
    });
  }

  /** Whether a client_id is a metadata document URL rather than a registered id. */
  isDocumentUrl(clientId: string): boolean {
    if (clientId.startsWith("https://")) return true;
    return (
      this.options.allowPrivateAddresses && /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])[:/]/.test(clientId)
    );
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** The client a document URL describes; throws invalid_client with a readable reason. */
  async resolve(clientId: string): Promise<ClientRecord> {
    const cached = this.cache.get(clientId);
    if (cached && cached.until > Date.now()) return cached.client;
    const url = this.checkUrl(clientId);
    const { document, cacheSeconds } = await this.fetchDocument(url);
    const client = this.toClient(clientId, document);
    if (cacheSeconds > 0) {
      if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(clientId, { client, until: Date.now() + cacheSeconds * 1000 });
    }
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
    if (!this.options.allowPrivateAddresses) {
      try {
        assertLiteralHostAllowed(url.hostname);
      } catch (err) {
        throw fail((err as Error).message);
      }
    }
    return url;
  }

  private async fetchDocument(url: URL): Promise<{ document: unknown; cacheSeconds: number }> {
    let response: Awaited<ReturnType<typeof request>>;
    try {
      response = await request(url, {
        dispatcher: this.agent,
        headers: { accept: "application/json" },
        signal: AbortSignal.timeout(this.options.timeoutSeconds * 1000),
      });
    } catch (err) {
      throw fail(`the client metadata document could not be fetched: ${(err as Error).message}`);
    }
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw fail(`the client metadata document answered HTTP ${response.statusCode}`);
    }
    const declared = Number(response.headers["content-length"] ?? 0);
    if (declared > this.options.maxBytes) {
      await response.body.dump();
      throw fail(`the client metadata document is larger than ${this.options.maxBytes} bytes`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length;
      if (size > this.options.maxBytes) {
        response.body.destroy();
        throw fail(`the client metadata document is larger than ${this.options.maxBytes} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    let document: unknown;
    try {
      document = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      throw fail("the client metadata document is not valid JSON");
    }
    return { document, cacheSeconds: this.cacheLifetime(response.headers["cache-control"]) };
  }

  private cacheLifetime(header: string | string[] | undefined): number {
    const value = (Array.isArray(header) ? header.join(",") : (header ?? "")).toLowerCase();
    if (/no-store|no-cache/.test(value)) return 0;
    const maxAge = /max-age=(\d+)/.exec(value);
    const seconds = maxAge ? Number(maxAge[1]) : DEFAULT_CACHE_SECONDS;
    return Math.min(seconds, this.options.maxCacheSeconds);
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
    if (method !== "none") {
      throw fail(
        `token_endpoint_auth_method ${String(method)} is not supported for metadata documents; use none`,
      );
    }
    let metadata: ReturnType<typeof parseClientMetadata>;
    try {
      metadata = parseClientMetadata({ ...doc, token_endpoint_auth_method: "none" });
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
