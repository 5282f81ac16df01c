/** Raw Streamable HTTP requests for tests that need to see exact statuses and headers. */
import { request } from "undici";

export const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: {
    protocolVersion: "2025-06-18",
    capabilities: {},
    clientInfo: { name: "raw-test", version: "1.0.0" },
  },
};

export const MCP_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
};

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One HTTP request with undici (which, unlike fetch, lets a test set Host and Origin). */
export async function raw(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<RawResponse> {
  const res = await request(url, {
    method: (options.method ?? "GET") as "GET",
    headers: options.headers,
    body: options.body,
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

/** POST an initialize request to an MCP endpoint with extra headers. */
export function postInitialize(url: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return raw(url, {
    method: "POST",
    headers: { ...MCP_HEADERS, ...headers },
    body: JSON.stringify(INITIALIZE),
  });
}

/**
 * Sends `send()` every 50 ms until it is answered with something other than 200 and returns
 * that answer; throws if it is still 200 after `withinMs` (a revocation or expiry that did not
 * bite in time).
 */
export async function firstRefusal(send: () => Promise<RawResponse>, withinMs: number): Promise<RawResponse> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const res = await send();
    if (res.status !== 200) return res;
    if (Date.now() > deadline) throw new Error(`still 200 after ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The 2026-07-28 protocol version. */
export const MODERN = "2026-07-28";

/** The `_meta` envelope a raw 2026-07-28 request carries in place of an initialize. */
export const MODERN_META = {
  "io.modelcontextprotocol/protocolVersion": MODERN,
  "io.modelcontextprotocol/clientCapabilities": {},
  "io.modelcontextprotocol/clientInfo": { name: "raw-test", version: "1.0.0" },
};

/**
 * A raw 2026-07-28 tools/call of `name` with the Mcp-Method and Mcp-Name headers the body
 * implies; `headers` are added last (a disagreeing Mcp-Name, an Mcp-Param-*).
 */
export function modernToolCall(
  url: string,
  call: {
    token: string;
    name: string;
    args?: Record<string, unknown>;
    id?: number;
    headers?: Record<string, string>;
  },
): Promise<RawResponse> {
  return raw(url, {
    method: "POST",
    headers: {
      ...MCP_HEADERS,
      authorization: `Bearer ${call.token}`,
      "mcp-protocol-version": MODERN,
      "mcp-method": "tools/call",
      "mcp-name": call.name,
      ...call.headers,
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: call.id ?? 1,
      method: "tools/call",
      params: { name: call.name, arguments: call.args ?? {}, _meta: MODERN_META },
    }),
  });
}
