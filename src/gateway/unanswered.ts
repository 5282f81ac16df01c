/**
 * Which JSON-RPC requests a proxied POST is still waiting on, so that an upstream dying
 * before it answers them ends the client's request with an error per id instead of a cut
 * socket (which an MCP client sits out until its request timeout).
 *
 * Only small JSON bodies are tracked (TRACKED_BODY_LIMIT): the proxy reads those whole before
 * forwarding and parses them only when it needs the ids, i.e. when the answer is an SSE stream
 * or the upstream failed. Larger or chunked bodies stream through untouched, untracked.
 */
import type { IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import type { FastifyReply } from "fastify";
import { SERVER_ERROR } from "./errors.js";

/** Bodies up to this size are read whole and their request ids tracked. */
export const TRACKED_BODY_LIMIT = 64 * 1024;

export type JsonRpcId = string | number;

/**
 * Reads the body of a small JSON POST whole (it is forwarded as one buffer) and hands it to
 * `done`, or the error if the client goes away first; returns false, reading nothing, for
 * anything else, which the proxy streams through untracked. Callbacks rather than a promise:
 * this runs on every proxied call, where a promise, its continuation and `once` wrappers were
 * a measurable part of the gateway's own CPU per call (bench/proxy-ab.ts).
 */
export function readTrackedBody(
  raw: IncomingMessage,
  done: (err: Error | undefined, body?: Buffer) => void,
): boolean {
  const length = Number(raw.headers["content-length"] ?? 0);
  if (raw.method !== "POST" || raw.headers["transfer-encoding"] !== undefined) return false;
  if (!(length > 0 && length <= TRACKED_BODY_LIMIT)) return false;
  if (!raw.headers["content-type"]?.includes("json")) return false;
  let first: Buffer | undefined;
  let chunks: Buffer[] | undefined;
  let finished = false;
  // `on`, not `once`: each of these ends the read, and `finished` keeps it to one outcome.
  raw.on("data", (chunk: Buffer) => {
    if (first === undefined) first = chunk;
    else if (chunks === undefined) chunks = [first, chunk];
    else chunks.push(chunk);
  });
  raw.on("end", () => {
    if (finished) return;
    finished = true;
    done(undefined, chunks ? Buffer.concat(chunks) : (first ?? Buffer.alloc(0)));
  });
  raw.on("error", (err: Error) => {
    if (finished) return;
    finished = true;
    done(err);
  });
  raw.on("close", () => {
    if (finished || raw.complete) return;
    finished = true;
    done(new Error("the client went away"));
  });
  return true;
}

/**
 * The first chunk of a response body (paused after it), null if it ended empty; rejects if it
 * fails or is destroyed first. Lets the proxy hold a JSON answer's headers until a byte of it
 * exists, so an upstream dying before that still gets the client a proper error status. Its
 * error listener stays on (inert) so a failure right after the first chunk is never unhandled:
 * the caller looks at `body.errored` once it resumes.
 */
export function firstChunk(body: Readable): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = () => {
      settled = true;
      body.off("data", onData);
      body.off("end", onEnd);
      body.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      body.pause();
      finish();
      resolve(chunk);
    };
    const onEnd = () => {
      finish();
      resolve(null);
    };
    const onClose = () => {
      finish();
      reject(body.errored ?? new Error("the upstream answer was closed"));
    };
    body.on("error", (err: Error) => {
      if (settled) return;
      finish();
      reject(err);
    });
    body.on("data", onData).on("end", onEnd).on("close", onClose);
  });
}

/** A JSON-RPC error response for each id, or one with `id: null` when there is none. */
function errorMessages(ids: readonly JsonRpcId[], message: string) {
  const error = { code: SERVER_ERROR, message };
  if (ids.length === 0) return [{ jsonrpc: "2.0", id: null, error }];
  return ids.map((id) => ({ jsonrpc: "2.0", id, error }));
}

/** The ids of the requests (not notifications or responses) in a JSON-RPC message or batch. */
export function requestIds(body: Buffer): JsonRpcId[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    return [];
  }
  const ids: JsonRpcId[] = [];
  for (const message of Array.isArray(parsed) ? parsed : [parsed]) {
    if (typeof message !== "object" || message === null) continue;
    const { id, method } = message as { id?: unknown; method?: unknown };
    if (typeof method === "string" && (typeof id === "string" || typeof id === "number")) ids.push(id);
  }
  return ids;
}

/** The same errors as sendUnanswered, as the JSON text of a response body. */
export function unansweredBody(ids: readonly JsonRpcId[], message: string): string {
  const messages = errorMessages(ids, message);
  return JSON.stringify(ids.length > 1 ? messages : messages[0]);
}

/**
 * Sends the gateway's own error for requests the upstream did not answer, before anything went
 * to the client: one error object for one id (or none, `id: null`), an array for a batch.
 */
export function sendUnanswered(
  reply: FastifyReply,
  status: number,
  message: string,
  ids: readonly JsonRpcId[],
): FastifyReply {
  const messages = errorMessages(ids, message);
  return reply
    .code(status)
    .header("content-type", "application/json; charset=utf-8")
    .header("cache-control", "no-store")
    .send(ids.length > 1 ? messages : messages[0]);
}

/** Where the next SSE event starts (after a blank line), or -1. */
function eventEnd(text: string): { at: number; length: number } | undefined {
  const lf = text.indexOf("\n\n");
  const crlf = text.indexOf("\r\n\r\n");
  if (lf < 0 && crlf < 0) return undefined;
  if (crlf < 0 || (lf >= 0 && lf < crlf)) return { at: lf, length: 2 };
  return { at: crlf, length: 4 };
}

/**
 * Watches the SSE answer to a POST for responses to its request ids. Events are parsed only
 * while some id is pending, and only up to TRACKED_BODY_LIMIT each: a larger event is skipped
 * (its id stays pending, so at worst the client hears of a request twice, never not at all).
 */
export class SseAnswers {
  private readonly pending: Set<JsonRpcId>;
  private readonly decoder = new StringDecoder("utf8");
  private buffer = "";
  private skipping = false;

  constructor(ids: readonly JsonRpcId[]) {
    this.pending = new Set(ids);
  }

  /** Whether every request has its answer (the caller may stop feeding chunks). */
  get settled(): boolean {
    return this.pending.size === 0;
  }

  /** Takes the next chunk of the stream as it goes to the client. */
  readonly see = (chunk: Buffer): void => {
    if (this.pending.size === 0) return;
    this.buffer += this.decoder.write(chunk);
    for (let end = eventEnd(this.buffer); end; end = eventEnd(this.buffer)) {
      const event = this.buffer.slice(0, end.at);
      this.buffer = this.buffer.slice(end.at + end.length);
      if (!this.skipping && event.length <= TRACKED_BODY_LIMIT) this.settle(event);
      this.skipping = false;
    }
    if (this.buffer.length > TRACKED_BODY_LIMIT) {
      // Too big to parse: skip to its end, keeping just enough to see a split blank line.
      this.skipping = true;
      this.buffer = this.buffer.slice(-3);
    }
  };

  /**
   * The end of the stream for a client still waiting: closes an event the upstream left half
   * written (the client drops it as unparseable), then one error event per unanswered id.
   */
  closing(message: string): string {
    if (this.pending.size === 0) return "";
    const lead = this.buffer.length > 0 || this.skipping ? "\n\n" : "";
    return (
      lead +
      errorMessages([...this.pending], message)
        .map((m) => `event: message\ndata: ${JSON.stringify(m)}\n\n`)
        .join("")
    );
  }

  private settle(event: string): void {
    let data = "";
    for (const line of event.split(/\r?\n/)) {
      if (line.startsWith("data:"))
        data += (data ? "\n" : "") + line.slice(line.startsWith("data: ") ? 6 : 5);
    }
    if (!data) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    for (const message of Array.isArray(parsed) ? parsed : [parsed]) {
      if (typeof message !== "object" || message === null || "method" in message) continue;
      const { id } = message as { id?: unknown };
      if (typeof id === "string" || typeof id === "number") this.pending.delete(id);
    }
  }
}
