/**
 * The two protocol eras as the bridge tells them apart. A 2026-07-28 request names its revision
 * in a per-request `_meta` envelope (with the client's capabilities, identity and log level);
 * a 2025 request has no such claim and belongs to a session opened with `initialize`.
 */
import type { JsonRpcMessage } from "./jsonrpc.js";

/** Reserved `_meta` keys of 2026-07-28. */
export const META = {
  protocolVersion: "io.modelcontextprotocol/protocolVersion",
  clientCapabilities: "io.modelcontextprotocol/clientCapabilities",
  clientInfo: "io.modelcontextprotocol/clientInfo",
  logLevel: "io.modelcontextprotocol/logLevel",
  subscriptionId: "io.modelcontextprotocol/subscriptionId",
  serverInfo: "io.modelcontextprotocol/serverInfo",
} as const;

/** Stateless revisions the bridge serves. */
export const MODERN_VERSIONS: readonly string[] = ["2026-07-28"];
/** Session revisions, oldest first; the bridge asks a child for the newest. */
export const LEGACY_VERSIONS: readonly string[] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
export const LATEST_LEGACY_VERSION = "2025-11-25";

/** RFC 5424 severities as MCP names them, lowest first. */
const SEVERITY: Record<string, number> = {
  debug: 0,
  info: 1,
  notice: 2,
  warning: 3,
  error: 4,
  critical: 5,
  alert: 6,
  emergency: 7,
};

/** The severity rank of a log level name, or undefined for anything else. */
export function severityOf(level: unknown): number | undefined {
  return typeof level === "string" ? SEVERITY[level] : undefined;
}

/** What a 2026-07-28 request says about its client. */
export interface Envelope {
  protocolVersion: string;
  capabilities: Record<string, unknown>;
  clientInfo?: { name: string; version: string };
  /** The least severe log level the client wants, if it wants logs at all. */
  logLevel?: string;
}

type Params = Record<string, unknown> & { _meta?: Record<string, unknown> };

function metaOf(msg: JsonRpcMessage): Record<string, unknown> | undefined {
  const params = msg.params as Params | undefined;
  const meta = params && typeof params === "object" ? params._meta : undefined;
  return meta && typeof meta === "object" ? meta : undefined;
}

/** The revision a message claims in its envelope; undefined for a 2025-era message. */
export function claimedVersion(msg: JsonRpcMessage): string | undefined {
  const version = metaOf(msg)?.[META.protocolVersion];
  return typeof version === "string" ? version : undefined;
}

/** The envelope of a claiming message, or the reason it is malformed (a -32602 for the client). */
export function readEnvelope(msg: JsonRpcMessage): Envelope | string {
  const meta = metaOf(msg) ?? {};
  const protocolVersion = meta[META.protocolVersion];
  if (typeof protocolVersion !== "string") return `${META.protocolVersion}: missing`;
  const capabilities = meta[META.clientCapabilities];
  if (!capabilities || typeof capabilities !== "object" || Array.isArray(capabilities)) {
    return `${META.clientCapabilities}: missing`;
  }
  const envelope: Envelope = { protocolVersion, capabilities: capabilities as Record<string, unknown> };
  const info = meta[META.clientInfo] as { name?: unknown; version?: unknown } | undefined;
  if (info && typeof info.name === "string" && typeof info.version === "string") {
    envelope.clientInfo = { name: info.name, version: info.version };
  }
  const level = meta[META.logLevel];
  if (level !== undefined) {
    if (severityOf(level) === undefined) return `${META.logLevel}: not a log level`;
    envelope.logLevel = level as string;
  }
  return envelope;
}

/**
 * A copy of a request as a 2025 child should see it: without the envelope's reserved keys and
 * without the multi-round-trip fields, which the bridge itself answers. Other `_meta` (a progress
 * token) stays.
 */
export function withoutEnvelope(msg: JsonRpcMessage): JsonRpcMessage {
  const params = msg.params as Params | undefined;
  if (!params || typeof params !== "object") return msg;
  const { _meta, inputResponses: _responses, requestState: _state, ...rest } = params;
  const out: Params = rest;
  if (_meta && typeof _meta === "object") {
    const meta: Record<string, unknown> = {};
    let kept = false;
    for (const key in _meta) {
      if (key.startsWith("io.modelcontextprotocol/")) continue;
      meta[key] = _meta[key];
      kept = true;
    }
    if (kept) out._meta = meta;
  }
  return { ...msg, params: out };
}

/**
 * The version a shared child's session is told it speaks: the one the session asked for when it
 * is a known session revision no newer than the child's own, else the child's.
 */
export function sessionVersion(requested: unknown, childVersion: string): string {
  return typeof requested === "string" && LEGACY_VERSIONS.includes(requested) && requested <= childVersion
    ? requested
    : childVersion;
}

/** A stable text for a capabilities object (key order does not matter), for pool keys. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
