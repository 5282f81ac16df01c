/**
 * Raw Streamable HTTP sessions for the instance-loss tests, which must see every status: open a
 * session, call a tool on it, find which instance holds it (its owner entry in Redis).
 */
import { Redis } from "ioredis";
import { type Dispatcher, request } from "undici";
import { INITIALIZE, MCP_HEADERS } from "../support/mcp-http.js";

export interface RawSession {
  sid: string;
  /** advertise_url of the instance holding it. */
  owner: string;
}

export interface CallOutcome {
  status: number;
  /** The tool's JSON answer, when there was one. */
  json?: Record<string, unknown>;
  text: string;
}

function headers(token: string, sid?: string): Record<string, string> {
  const h: Record<string, string> = { ...MCP_HEADERS, authorization: `Bearer ${token}` };
  if (sid) {
    h["mcp-session-id"] = sid;
    h["mcp-protocol-version"] = "2025-06-18";
  }
  return h;
}

/** The JSON-RPC message in a JSON or SSE answer. */
function message(text: string): Record<string, unknown> | undefined {
  const data = text.includes("data:")
    ? text
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5))
        .pop()
    : text;
  try {
    return data ? (JSON.parse(data) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export async function ownerEntry(
  redisUrl: string,
  service: string,
  sid: string,
): Promise<string | undefined> {
  const redis = new Redis(redisUrl);
  try {
    const raw = await redis.get(`mcpgw:cluster_sessions:${service}:${sid}`);
    return raw ? (JSON.parse(raw) as { owner: string }).owner : undefined;
  } finally {
    redis.disconnect();
  }
}

/** initialize + notifications/initialized; the status of a refused initialize is thrown. */
export async function openSession(
  url: string,
  token: string,
  redisUrl: string,
  /** How to connect (another local address, say); undici's global dispatcher by default. */
  dispatcher?: Dispatcher,
): Promise<RawSession> {
  const init = await request(url, {
    dispatcher,
    method: "POST",
    headers: headers(token),
    body: JSON.stringify(INITIALIZE),
  });
  const text = await init.body.text();
  const sid = init.headers["mcp-session-id"];
  if (init.statusCode !== 200 || typeof sid !== "string")
    throw new Error(`initialize: ${init.statusCode} ${text}`);
  const done = await request(url, {
    dispatcher,
    method: "POST",
    headers: headers(token, sid),
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
  });
  await done.body.dump();
  const service = new URL(url).pathname.split("/")[1] as string;
  return { sid, owner: (await ownerEntry(redisUrl, service, sid)) as string };
}

let nextId = 100;

export async function callTool(
  url: string,
  token: string,
  sid: string,
  name: string,
  args: Record<string, unknown> = {},
  options: { dispatcher?: Dispatcher; headers?: Record<string, string> } = {},
): Promise<CallOutcome> {
  const res = await request(url, {
    dispatcher: options.dispatcher,
    method: "POST",
    headers: { ...headers(token, sid), ...options.headers },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: nextId++,
      method: "tools/call",
      params: { name, arguments: args },
    }),
  });
  const text = await res.body.text();
  const msg = message(text);
  const result = msg?.result as { content?: Array<{ text: string }> } | undefined;
  const json = result?.content?.[0]?.text
    ? (JSON.parse(result.content[0].text) as Record<string, unknown>)
    : undefined;
  return { status: res.statusCode, json, text };
}
