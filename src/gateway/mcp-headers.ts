/**
 * The standard MCP headers of 2026-07-28 (SEP-2243) against the JSON-RPC body. A request that
 * declares that revision or a later one (its MCP-Protocol-Version header, or its `_meta`
 * envelope) must carry `Mcp-Method` equal to the body's method and, for the methods that name
 * something, `Mcp-Name` equal to that name (`=?base64?…?=` decoded); otherwise it is answered
 * 400 with HeaderMismatch (-32020) and never forwarded. Earlier revisions have no such headers
 * and are not checked. Custom `Mcp-Param-*` headers (a tool's `x-mcp-header` arguments) are
 * end-to-end and go to the upstream untouched, which checks them against its own schemas.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { JsonRpcId } from "./errors.js";

/** SEP-2243 HeaderMismatch: headers mirrored from the body are missing, malformed or differ. */
export const HEADER_MISMATCH = -32020;
/** The first revision with the standard headers (revisions are dates, so they sort as strings). */
export const FIRST_MODERN_REVISION = "2026-07-28";
/** Where the 2026-07-28 envelope names the request's revision. */
const VERSION_META_KEY = "io.modelcontextprotocol/protocolVersion";

/** The methods whose body names something, and the params field `Mcp-Name` mirrors. */
const NAME_SOURCE: Readonly<Record<string, string>> = {
  "tools/call": "name",
  "prompts/get": "name",
  "resources/read": "uri",
  "tasks/get": "taskId",
  "tasks/update": "taskId",
  "tasks/cancel": "taskId",
};

/** One JSON-RPC message as parsed from a body (only what the gateway looks at is typed). */
export interface JsonRpcMessage {
  jsonrpc?: unknown;
  id?: unknown;
  method?: unknown;
  params?: unknown;
}

export interface HeaderMismatch {
  code: typeof HEADER_MISMATCH;
  message: string;
  data: { mismatch: { header: string; body: string } };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The id of a request, as it may be echoed in an error (null when it has none or a bad one). */
export function requestId(message: JsonRpcMessage): JsonRpcId {
  const id = message.id;
  return typeof id === "string" || typeof id === "number" ? id : null;
}

function single(value: string | string[] | undefined): string | undefined {
  const one = Array.isArray(value) ? value.join(",") : value;
  return one === undefined ? undefined : one.replace(/^[ \t]+|[ \t]+$/g, "");
}

/** Whether the headers alone declare 2026-07-28 or later (a header look-up, no body). */
export function headerDeclaresModern(headers: IncomingHttpHeaders): boolean {
  const version = single(headers["mcp-protocol-version"]);
  return version !== undefined && version >= FIRST_MODERN_REVISION;
}

/** The revision the body's `_meta` envelope names, if any. */
function envelopeVersion(message: JsonRpcMessage): string | undefined {
  const meta = isObject(message.params) ? message.params._meta : undefined;
  const version = isObject(meta) ? meta[VERSION_META_KEY] : undefined;
  return typeof version === "string" ? version : undefined;
}

const SENTINEL = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/;

/** A header value with the `=?base64?…?=` sentinel decoded; undefined when it is not valid. */
export function decodeHeaderValue(value: string): string | undefined {
  if (!value.startsWith("=?base64?") || !value.endsWith("?=")) return value;
  const match = SENTINEL.exec(value);
  const b64 = match?.[1];
  if (b64 === undefined || b64.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(b64, "base64");
  // Canonical only: what decodes must encode back to the same text.
  if (bytes.toString("base64") !== b64) return undefined;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

function mismatch(header: string, body: string): HeaderMismatch {
  return {
    code: HEADER_MISMATCH,
    message: `Bad Request: the request headers and body disagree: ${body}`,
    data: { mismatch: { header, body } },
  };
}

/**
 * The HeaderMismatch error for `message` with `headers`, or undefined when they agree or the
 * message is of an earlier revision. Batches (2025-03-26) are never of 2026-07-28.
 */
export function checkStandardHeaders(
  headers: IncomingHttpHeaders,
  message: JsonRpcMessage,
): HeaderMismatch | undefined {
  const headerVersion = single(headers["mcp-protocol-version"]);
  const bodyVersion = envelopeVersion(message);
  const modern =
    (headerVersion !== undefined && headerVersion >= FIRST_MODERN_REVISION) ||
    (bodyVersion !== undefined && bodyVersion >= FIRST_MODERN_REVISION);
  if (!modern) return undefined;
  const method = typeof message.method === "string" ? message.method : undefined;
  if (method === undefined) return undefined; // a posted response: nothing is mirrored
  if (headerVersion !== undefined && bodyVersion !== undefined && headerVersion !== bodyVersion) {
    return mismatch(
      headerVersion,
      `the body envelope names protocol version ${bodyVersion} but the MCP-Protocol-Version header names ${headerVersion}`,
    );
  }
  const methodHeader = single(headers["mcp-method"]);
  if (methodHeader !== undefined && methodHeader !== method) {
    return mismatch(
      methodHeader,
      `the body names method ${method} but the Mcp-Method header names ${methodHeader}`,
    );
  }
  // Presence is required of requests only; a notification is checked for agreement alone.
  if (message.id === undefined) return undefined;
  if (headerVersion === undefined) {
    return mismatch(
      "(missing)",
      `the body envelope names protocol version ${bodyVersion} but the required MCP-Protocol-Version header is absent`,
    );
  }
  if (methodHeader === undefined) {
    return mismatch(
      "(missing)",
      `the body names method ${method} but the required Mcp-Method header is absent`,
    );
  }
  const field = Object.hasOwn(NAME_SOURCE, method) ? NAME_SOURCE[method] : undefined;
  if (field === undefined) return undefined;
  const raw = isObject(message.params) ? message.params[field] : undefined;
  const bodyName = typeof raw === "string" ? raw : undefined;
  const nameHeader = single(headers["mcp-name"]);
  if (nameHeader === undefined) {
    if (bodyName === undefined) return undefined;
    return mismatch(
      "(missing)",
      `the body carries params.${field}="${bodyName}" but the required Mcp-Name header is absent`,
    );
  }
  const decoded = decodeHeaderValue(nameHeader);
  if (decoded === undefined) {
    return mismatch(nameHeader, "the Mcp-Name header carries an invalid Base64 sentinel value");
  }
  if (bodyName !== undefined && decoded !== bodyName) {
    return mismatch(
      nameHeader,
      `the body carries params.${field}="${bodyName}" but the Mcp-Name header names "${decoded}"`,
    );
  }
  return undefined;
}
