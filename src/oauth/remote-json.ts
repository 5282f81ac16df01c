/**
 * Fetching a JSON document a client names (its metadata document, its `jwks_uri`): https only,
 * never from private, loopback or link-local addresses (checked at connect time, after DNS, by
 * src/net/ssrf.ts), no redirects, bounded in time and size, and with the lifetime its HTTP
 * caching headers give it (bounded too).
 */
import { Agent, request } from "undici";
import { assertLiteralHostAllowed, guardedLookup } from "../net/ssrf.js";

export interface RemoteJsonOptions {
  timeoutSeconds: number;
  /** Upper bound on caching, whatever the document's headers say. */
  maxCacheSeconds: number;
  /** Tests on loopback only: allow private addresses, and plain http on loopback hosts. */
  allowPrivateAddresses: boolean;
}

/** Without caching headers a document is reused for this long. */
const DEFAULT_CACHE_SECONDS = 300;

/** Why a document could not be had; the message is fit for an error_description. */
export class RemoteJsonError extends Error {
  override readonly name = "RemoteJsonError";
}

export interface FetchedJson {
  document: unknown;
  /** How long the document may be reused; 0 = not at all. */
  cacheSeconds: number;
}

export class RemoteJson {
  private readonly agent: Agent;

  constructor(private readonly options: RemoteJsonOptions) {
    this.agent = new Agent({
      connect: options.allowPrivateAddresses ? {} : { lookup: guardedLookup() },
      headersTimeout: options.timeoutSeconds * 1000,
      bodyTimeout: options.timeoutSeconds * 1000,
    });
  }

  /** Whether a URL may name a document at all: https, or (tests) http on a loopback host. */
  isFetchable(value: string): boolean {
    if (value.startsWith("https://")) return true;
    return this.options.allowPrivateAddresses && /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])[:/]/.test(value);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** GETs `url` (already validated by the caller) and parses it; `what` names it in errors. */
  async fetch(url: URL, what: string, maxBytes: number): Promise<FetchedJson> {
    if (!this.options.allowPrivateAddresses) {
      try {
        assertLiteralHostAllowed(url.hostname);
      } catch (err) {
        throw new RemoteJsonError((err as Error).message);
      }
    }
    let response: Awaited<ReturnType<typeof request>>;
    try {
      response = await request(url, {
        dispatcher: this.agent,
        headers: { accept: "application/json" },
        signal: AbortSignal.timeout(this.options.timeoutSeconds * 1000),
      });
    } catch (err) {
      throw new RemoteJsonError(`the ${what} could not be fetched: ${(err as Error).message}`);
    }
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw new RemoteJsonError(`the ${what} answered HTTP ${response.statusCode}`);
    }
    const tooBig = () => new RemoteJsonError(`the ${what} is larger than ${maxBytes} bytes`);
    if (Number(response.headers["content-length"] ?? 0) > maxBytes) {
      await response.body.dump();
      throw tooBig();
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        response.body.destroy();
        throw tooBig();
      }
      chunks.push(chunk as Buffer);
    }
    let document: unknown;
    try {
      document = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      throw new RemoteJsonError(`the ${what} is not valid JSON`);
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
}
