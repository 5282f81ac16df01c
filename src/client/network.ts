/**
 * Network failures in words a person can act on: `fetch` says only "fetch failed", with the
 * socket's error code buried in `cause`. `fetchNamingFailures` is the fetch every client
 * request goes through (discovery, tokens, the MCP transport); it rethrows a failure as a
 * `NetworkError` naming the host and the cause (ECONNREFUSED, ENOTFOUND, a TLS problem, …).
 *
 * `NetworkError` extends TypeError on purpose: the SDK's discovery treats a TypeError from
 * fetch as "the network failed" and passes it on, where any other error would be read as
 * "no metadata here" and swallowed.
 */
import { STATUS_CODES } from "node:http";

/** What a socket error code means, for the codes people meet. */
const MEANINGS: Record<string, string> = {
  ECONNREFUSED: "connection refused: nothing listens there",
  ENOTFOUND: "the host name does not resolve",
  EAI_AGAIN: "the host name could not be resolved right now (DNS)",
  ECONNRESET: "the connection was reset",
  ETIMEDOUT: "the connection timed out",
  EHOSTUNREACH: "the host is unreachable",
  ENETUNREACH: "the network is unreachable",
  UND_ERR_CONNECT_TIMEOUT: "the connection timed out",
  UND_ERR_SOCKET: "the connection closed unexpectedly",
  UND_ERR_HEADERS_TIMEOUT: "the server sent no response headers in time",
  CERT_HAS_EXPIRED: "TLS: the server's certificate has expired",
  DEPTH_ZERO_SELF_SIGNED_CERT: "TLS: the server's certificate is self-signed",
  SELF_SIGNED_CERT_IN_CHAIN: "TLS: a self-signed certificate is in the server's chain",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "TLS: the server's certificate cannot be verified",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "TLS: the issuer of the server's certificate is not trusted here",
  ERR_TLS_CERT_ALTNAME_INVALID: "TLS: the server's certificate is for another name",
  ERR_SSL_WRONG_VERSION_NUMBER: "TLS handshake failed: the port does not speak TLS (plain HTTP?)",
  EPROTO: "TLS handshake failed",
};

/** A request that never got a response, with the host and the reason in its message. */
export class NetworkError extends TypeError {
  constructor(
    readonly host: string,
    readonly code: string | undefined,
    reason: string,
  ) {
    super(`cannot reach ${host}: ${reason}`);
    this.name = "NetworkError";
  }
}

interface ErrorWithCode extends Error {
  code?: string;
  cause?: unknown;
  errors?: unknown[];
}

/** The innermost error that carries a code (AggregateError: the first of its errors that does). */
function codedCause(err: unknown, depth = 0): ErrorWithCode | undefined {
  if (!(err instanceof Error) || depth > 5) return undefined;
  const e = err as ErrorWithCode;
  const deeper =
    codedCause(e.cause, depth + 1) ?? e.errors?.map((x) => codedCause(x, depth + 1)).find(Boolean);
  return deeper ?? (e.code ? e : undefined);
}

/** The innermost cause, for a failure that carries no code ("bad port"). */
function innermost(err: Error, depth = 0): Error {
  const cause = (err as ErrorWithCode).cause;
  return cause instanceof Error && depth < 5 ? innermost(cause, depth + 1) : err;
}

/** `err` (a failed fetch of `url`) as a NetworkError; anything not a network failure as it was. */
export function networkError(err: unknown, url: string | URL): unknown {
  if (err instanceof NetworkError || !(err instanceof TypeError)) return err;
  const cause = codedCause(err) ?? innermost(err);
  let host: string;
  try {
    host = new URL(url).host;
  } catch {
    host = String(url);
  }
  const code = (cause as ErrorWithCode).code;
  let reason = code ? (MEANINGS[code] ?? cause.message ?? code) : cause.message;
  if (code && /SSL|TLS|CERT/i.test(code) && !reason.startsWith("TLS")) reason = `TLS: ${reason}`;
  return new NetworkError(host, code, code ? `${reason} (${code})` : reason);
}

/** `fetch` whose network failures are NetworkErrors naming the host and the cause. */
export const fetchNamingFailures = async (input: string | URL, init?: RequestInit): Promise<Response> => {
  try {
    return await fetch(input, init);
  } catch (err) {
    // An abort is the caller's own doing, not the network's.
    if ((err as Error).name === "AbortError") throw err;
    throw networkError(err, input);
  }
};

/** `HTTP 502 Bad Gateway`, with the standard phrase when the server sent none. */
export function statusLine(res: Response): string {
  const phrase = res.statusText || STATUS_CODES[res.status] || "";
  return phrase ? `HTTP ${res.status} ${phrase}` : `HTTP ${res.status}`;
}

/** A short, single-line excerpt of a body for an error message, or "" when there is nothing useful. */
export function bodyExcerpt(text: string, max = 160): string {
  const plain = text
    .replace(/<[^>]*>/g, " ")
    .replace(/\s+/g, " ")
    .trim();
  if (!plain) return "";
  return plain.length > max ? `${plain.slice(0, max)}…` : plain;
}
