/**
 * 2025-era MCP sessions over HTTP for the bench, against a bridge directly or through the
 * gateway (then with a Bearer token): open them the way a client does (initialize,
 * notifications/initialized, one checked tools/call), and drive tools/call at full load
 * spread over them. The tool is the in-box `time` server's get_current_time unless named, and
 * every answer is checked for a result: a 200 carrying a JSON-RPC error is a failure too.
 */
import { type LoadResult, load } from "./lib.js";

export const PROTOCOL_VERSION = "2025-06-18";

export const MCP_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
};

/** Where sessions are opened: the MCP endpoint, and the Bearer token when it is the gateway's. */
export interface SessionEndpoint {
  url: string;
  token?: string;
}

export function callBody(
  id: number,
  name = "get_current_time",
  args: Record<string, unknown> = { timezone: "UTC" },
): string {
  return JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } });
}

/** A get_current_time answer (JSON, or one SSE `data:` event) that carries the tool's result. */
export function isTimeResult(body: string): boolean {
  return body.includes('"result":{"content":[') && body.includes('"timezone":"UTC"');
}

function baseHeaders(endpoint: SessionEndpoint): Record<string, string> {
  return endpoint.token ? { ...MCP_HEADERS, authorization: `Bearer ${endpoint.token}` } : { ...MCP_HEADERS };
}

/** One POST; reads the reply whether it came as JSON or as an SSE stream of one event. */
async function post(
  endpoint: SessionEndpoint,
  body: string,
  sid?: string,
): Promise<{ status: number; text: string; sid: string | null }> {
  const headers = baseHeaders(endpoint);
  if (sid) Object.assign(headers, { "mcp-session-id": sid, "mcp-protocol-version": PROTOCOL_VERSION });
  const res = await fetch(endpoint.url, { method: "POST", headers, body });
  return { status: res.status, text: await res.text(), sid: res.headers.get("mcp-session-id") };
}

/** initialize, notifications/initialized and one checked tools/call: a session as a client leaves it. */
export async function openSession(endpoint: SessionEndpoint): Promise<string> {
  const { url } = endpoint;
  const init = await post(
    endpoint,
    JSON.stringify({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: {
        protocolVersion: PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: "bench", version: "1" },
      },
    }),
  );
  if (init.status !== 200 || !init.sid || !init.text.includes('"result"')) {
    throw new Error(`initialize at ${url} answered ${init.status}: ${init.text.slice(0, 300)}`);
  }
  const ack = await post(
    endpoint,
    JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
    init.sid,
  );
  if (ack.status !== 202) throw new Error(`initialized at ${url} answered ${ack.status}`);
  const call = await post(endpoint, callBody(1), init.sid);
  if (call.status !== 200 || !isTimeResult(call.text)) {
    throw new Error(`tools/call at ${url} answered ${call.status}: ${call.text.slice(0, 300)}`);
  }
  return init.sid;
}

/**
 * Opens `count` sessions, `atOnce` at a time: few where each session spawns a child process,
 * more where one shared child serves them all.
 */
export async function openSessions(
  endpoint: SessionEndpoint,
  count: number,
  atOnce: number,
): Promise<string[]> {
  const sids: string[] = [];
  while (sids.length < count) {
    const batch = Math.min(atOnce, count - sids.length);
    sids.push(...(await Promise.all(Array.from({ length: batch }, () => openSession(endpoint)))));
  }
  return sids;
}

/**
 * A full-load side (autocannon, closed loop) whose n-th request adds `nth(n).headers` to
 * `headers` and sends `nth(n).body`; a 200 whose body fails `good` counts as an error, so a
 * JSON-RPC error or an empty stream is not measured as a success.
 */
export function checkedLoad(
  url: string,
  headers: Record<string, string>,
  nth: (n: number) => { headers: Record<string, string>; body: string },
  good: (body: string) => boolean,
) {
  let next = 0;
  return async (duration: number): Promise<LoadResult> => {
    let bad = 0;
    const result = await load({
      url,
      method: "POST",
      headers,
      duration,
      requests: [
        {
          setupRequest: (req) => {
            const request = nth(next++);
            return { ...req, headers: { ...req.headers, ...request.headers }, body: request.body };
          },
          onResponse: (status, body) => {
            if (status === 200 && !good(body)) bad++;
          },
        },
      ],
    });
    return { ...result, errors: result.errors + bad };
  };
}

/** tools/call at full load, each request on the next session id with a fresh JSON-RPC id. */
export function sessionCallLoad(endpoint: SessionEndpoint, sids: string[]) {
  return checkedLoad(
    endpoint.url,
    { ...baseHeaders(endpoint), "mcp-protocol-version": PROTOCOL_VERSION },
    (n) => ({ headers: { "mcp-session-id": sids[n % sids.length] as string }, body: callBody(n + 100) }),
    isTimeResult,
  );
}
