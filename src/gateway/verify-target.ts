/**
 * Which service a /verify request asks about. One decision for both lanes of /verify (the
 * fastify route and the cached shortcut), from the raw request alone.
 *
 * 1. Named by the proxy's configuration: `/verify?service=NAME`, the form every shipped
 *    config uses. Nothing the client sends can change the service then. (A host-routed
 *    deployment gets the service's host URL in its challenge when a trusted proxy forwards
 *    that service's own host; the service itself still comes from the URL.)
 * 2. Otherwise only from a trusted proxy (`trust_proxy`), only from the `X-Forwarded-*`
 *    family (`X-Forwarded-Host`, `X-Forwarded-Uri`), and only when they are unambiguous: a
 *    second URI header, a host naming one service and a URI another, a URI with dot segments,
 *    encoded slashes, backslashes or encoded dots are refused, never routed. A proxy that
 *    normalises `/echo/../other/mcp` to `/other/mcp` for its own routing while the gateway
 *    reads the raw first segment would otherwise open one service with another's token.
 *
 * A refusal is a reason for the 401 challenge; it never names what the headers claimed.
 */
import type { IncomingMessage } from "node:http";
import type { ClientAddresses } from "../http/client-address.js";
import type { ServiceRoute, ServiceRouter } from "./routing.js";

export const VERIFY_PATH = "/verify";

export const NO_SERVICE = "No service matches this request";
const SEVERAL_NAMED = "The /verify URL names more than one service";
const UNTRUSTED = "No service matches this request (name it in the /verify URL)";
const AMBIGUOUS = "The forwarded request names its target more than once";
const NOT_PLAIN = "The forwarded URI is not a plain path";

export type VerifyTarget =
  | { route: ServiceRoute; refusal?: undefined }
  | { route?: undefined; refusal: string };

/**
 * `?service=` of a /verify URL: undefined (absent), the name, or null (given more than once).
 * A proxy asks with the same few URLs every time, so their answers are kept (bounded, since a
 * client can make up URLs).
 */
export function namedService(url: string): string | undefined | null {
  const query = url.indexOf("?");
  if (query < 0) return undefined;
  const known = namedMemo.get(url);
  if (known !== undefined) return known === ABSENT ? undefined : known;
  const all = new URLSearchParams(url.slice(query + 1)).getAll("service");
  const named = all.length > 1 ? null : all[0];
  if (namedMemo.size < NAMED_MEMO_MAX) namedMemo.set(url, named === undefined ? ABSENT : named);
  return named;
}

const ABSENT = Symbol("absent");
const NAMED_MEMO_MAX = 256;
const namedMemo = new Map<string, string | null | typeof ABSENT>();

/** A header that may be given once; a repeated one (Node joins them with ", ") counts as ambiguous. */
function single(value: string | string[] | undefined): string | undefined | null {
  if (value === undefined) return undefined;
  if (Array.isArray(value) || /\s/.test(value)) return null;
  return value;
}

/**
 * Whether a forwarded path is one the gateway and every proxy read alike: no `.`/`..` segment,
 * no encoded dot, slash or backslash, no backslash, no empty segment.
 */
export function isPlainPath(path: string): boolean {
  if (!path.startsWith("/") || path.includes("\\") || path.includes("//")) return false;
  if (/%(2e|2f|5c)/i.test(path)) return false;
  for (const segment of path.split("/")) if (segment === "." || segment === "..") return false;
  return true;
}

export class VerifyTargets {
  constructor(
    private readonly router: ServiceRouter,
    private readonly clients: ClientAddresses,
  ) {}

  find(req: IncomingMessage): VerifyTarget {
    const named = namedService(req.url ?? "");
    if (named === null) return { refusal: SEVERAL_NAMED };
    if (named !== undefined) return this.named(req, named);
    const client = this.clients.of(req);
    if (!client.viaTrustedProxy) return { refusal: UNTRUSTED };
    return this.forwarded(req, client.host);
  }

  /** Whether the proxy says the original request was a CORS preflight (no token by design). */
  isPreflight(req: IncomingMessage): boolean {
    const { headers } = req;
    // A browser's preflight always carries both; a lone method claim is not one.
    if (headers.origin === undefined || headers["access-control-request-method"] === undefined) return false;
    return single(headers["x-forwarded-method"])?.toUpperCase() === "OPTIONS";
  }

  private named(req: IncomingMessage, name: string): VerifyTarget {
    const route = this.router.byName(name);
    if (!route) return { refusal: NO_SERVICE };
    if (this.router.hostRouting) {
      const client = this.clients.of(req);
      if (client.viaTrustedProxy && this.router.byHost(client.host)?.name === name) {
        return { route: { ...route, via: "host" } };
      }
    }
    return { route };
  }

  private forwarded(req: IncomingMessage, host: string | undefined): VerifyTarget {
    const { headers } = req;
    const uri = single(headers["x-forwarded-uri"]);
    if (uri === null || (uri !== undefined && headers["x-original-uri"] !== undefined)) {
      return { refusal: AMBIGUOUS };
    }
    let byPath: ServiceRoute | undefined;
    if (uri !== undefined) {
      const end = uri.search(/[?#]/);
      const path = end < 0 ? uri : uri.slice(0, end);
      if (!isPlainPath(path)) return { refusal: NOT_PLAIN };
      byPath = this.router.byPath(path);
    }
    const byHost = this.router.byHost(host);
    if (byHost && byPath && byHost.name !== byPath.name) return { refusal: AMBIGUOUS };
    const route = byPath ?? byHost;
    return route ? { route } : { refusal: NO_SERVICE };
  }
}
