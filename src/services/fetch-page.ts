/**
 * Fetch one web page for the `fetch` tool: SSRF-guarded connections (checked after DNS and on
 * every redirect, followed by hand), robots.txt respected, HTML simplified to markdown.
 */
import robotsParserModule from "robots-parser";
import TurndownService from "turndown";
import { Agent, type Dispatcher, fetch } from "undici";
import {
  assertLiteralHostAllowed,
  ForbiddenAddressError,
  guardedLookup,
  type Resolver,
} from "../net/ssrf.js";

// robots-parser is CommonJS (`module.exports = fn`) but its types declare an ES default export.
const robotsParser = robotsParserModule as unknown as typeof robotsParserModule.default;

export const DEFAULT_USER_AGENT = "mcp-oauth-gateway-fetch";

/** A failure the tool reports to its caller as an error result. */
export class FetchToolError extends Error {}

export interface PageFetcherOptions {
  userAgent?: string;
  /** Allow private, loopback and link-local destinations (tests on loopback only). */
  allowPrivate?: boolean;
  ignoreRobots?: boolean;
  /** DNS resolution for guarded connections (tests inject names; default: the system's). */
  resolve?: Resolver;
  /** Origins exempt from the address check, e.g. a loopback test server standing in for the web. */
  exemptOrigins?: string[];
  timeoutMs?: number;
  maxBytes?: number;
}

export interface FetchedPage {
  /** Markdown, or the raw text when it cannot or should not be simplified. */
  content: string;
  /** Said before the content, e.g. that it is raw. */
  prefix: string;
}

const MAX_REDIRECTS = 5;
const ROBOTS_CACHE_MS = 10 * 60_000;

function decode(body: Uint8Array, contentType: string): string {
  const charset = /charset=["']?([\w-]+)/i.exec(contentType)?.[1];
  try {
    return new TextDecoder(charset ?? "utf-8").decode(body);
  } catch {
    return new TextDecoder("utf-8").decode(body);
  }
}

/** Elements that are never page content. */
const NON_CONTENT = new Set([
  "SCRIPT",
  "STYLE",
  "NOSCRIPT",
  "TEMPLATE",
  "IFRAME",
  "OBJECT",
  "EMBED",
  "HEAD",
  "TITLE",
  "META",
  "LINK",
  "SVG",
]);
const turndown = new TurndownService({
  headingStyle: "atx",
  codeBlockStyle: "fenced",
  bulletListMarker: "-",
});
turndown.remove((node) => NON_CONTENT.has(node.nodeName.toUpperCase()));

/** HTML to markdown without scripts, styles and other non-content. */
export function htmlToMarkdown(html: string): string {
  return turndown.turndown(html).trim();
}

/** Build a fetcher; reuse it, it keeps connection pools and a robots.txt cache. */
export function createPageFetcher(opts: PageFetcherOptions = {}) {
  const userAgent = opts.userAgent ?? DEFAULT_USER_AGENT;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const maxBytes = opts.maxBytes ?? 5 * 1024 * 1024;
  const exempt = new Set(opts.exemptOrigins ?? []);
  const guarded = new Agent({ connect: { lookup: guardedLookup(opts.resolve) } });
  const open = new Agent();
  const robotsCache = new Map<string, { at: number; allowed: (url: string) => boolean }>();

  function dispatcherFor(url: URL): Dispatcher {
    if (opts.allowPrivate || exempt.has(url.origin)) return open;
    assertLiteralHostAllowed(url.hostname);
    return guarded;
  }

  /** GET with redirects followed by hand, each hop checked again. */
  async function get(
    start: string,
  ): Promise<{ url: string; status: number; contentType: string; body: Uint8Array }> {
    let url = parseHttpUrl(start);
    for (let hop = 0; ; hop++) {
      let res: Awaited<ReturnType<typeof fetch>>;
      try {
        res = await fetch(url, {
          dispatcher: dispatcherFor(url),
          redirect: "manual",
          headers: { "user-agent": userAgent, accept: "text/html,application/xhtml+xml,*/*;q=0.8" },
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        throw explain(err, url.href);
      }
      const location = res.headers.get("location");
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel();
        if (hop >= MAX_REDIRECTS)
          throw new FetchToolError(`Too many redirects (over ${MAX_REDIRECTS}) fetching ${start}`);
        url = parseHttpUrl(new URL(location, url).href);
        continue;
      }
      const body = await readCapped(res.body, maxBytes);
      return { url: url.href, status: res.status, contentType: res.headers.get("content-type") ?? "", body };
    }
  }

  async function checkRobots(target: URL): Promise<void> {
    const robotsUrl = `${target.origin}/robots.txt`;
    const cached = robotsCache.get(target.origin);
    let allowed = cached && Date.now() - cached.at < ROBOTS_CACHE_MS ? cached.allowed : undefined;
    if (!allowed) {
      let res: Awaited<ReturnType<typeof get>>;
      try {
        res = await get(robotsUrl);
      } catch (err) {
        if (err instanceof FetchToolError) throw err;
        throw new FetchToolError(`Failed to fetch robots.txt ${robotsUrl} due to a connection issue`);
      }
      if (res.status === 401 || res.status === 403) {
        throw new FetchToolError(
          `When fetching robots.txt (${robotsUrl}), received status ${res.status} so assuming that autonomous fetching is not allowed.`,
        );
      }
      if (res.status >= 200 && res.status < 300) {
        const robots = robotsParser(robotsUrl, decode(res.body, res.contentType));
        allowed = (url) => robots.isAllowed(url, userAgent) !== false;
      } else {
        allowed = () => true;
      }
      robotsCache.set(target.origin, { at: Date.now(), allowed });
    }
    if (!allowed(target.href)) {
      throw new FetchToolError(
        `The site's robots.txt (${robotsUrl}) specifies that autonomous fetching of this page is not allowed.\n<useragent>${userAgent}</useragent>\n<url>${target.href}</url>`,
      );
    }
  }

  return {
    /** Fetch `url` and return its content (markdown unless `raw` or not HTML). */
    async fetchPage(url: string, raw = false): Promise<FetchedPage> {
      const target = parseHttpUrl(url);
      if (!opts.ignoreRobots) await checkRobots(target);
      const res = await get(target.href);
      if (res.status >= 400) throw new FetchToolError(`Failed to fetch ${url} - status code ${res.status}`);
      const text = decode(res.body, res.contentType);
      const isHtml =
        /<html/i.test(text.slice(0, 100)) || res.contentType.includes("text/html") || !res.contentType;
      if (isHtml && !raw) {
        const markdown = htmlToMarkdown(text);
        return { content: markdown || "<error>Page failed to be simplified from HTML</error>", prefix: "" };
      }
      const prefix = raw
        ? ""
        : `Content type ${res.contentType} cannot be simplified to markdown, but here is the raw content:\n`;
      return { content: text, prefix };
    },
    async close(): Promise<void> {
      await Promise.all([guarded.close(), open.close()]);
    },
  };
}

function parseHttpUrl(input: string): URL {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new FetchToolError(`Invalid URL: ${input}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new FetchToolError(`Only http and https URLs can be fetched, not ${url.protocol}`);
  }
  return url;
}

async function readCapped(body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<Uint8Array> {
  if (!body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= maxBytes) break; // the rest is more than any page the tool would return
  }
  return Buffer.concat(chunks).subarray(0, maxBytes);
}

/** Turn a network failure into a message for the caller, surfacing SSRF refusals as such. */
function explain(err: unknown, url: string): Error {
  if (err instanceof FetchToolError) return err;
  let cause: unknown = err;
  while (cause instanceof Error) {
    if (cause instanceof ForbiddenAddressError) return new FetchToolError(cause.message);
    cause = cause.cause;
  }
  const detail =
    err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
  return new FetchToolError(`Failed to fetch ${url}: ${detail}`);
}
