/**
 * The owner's answer on the internal channel, signed as its request is (signature.ts), so the
 * relaying instance passes on only what the owner sent. The channel is plain HTTP between
 * instances: whoever can answer in the owner's place (someone on a shared network between
 * hosts, or a local process that takes the owner's port once the owner is gone and its entry
 * has not yet lapsed) could otherwise put any tool result or event into a client's session.
 *
 * - The head: an HMAC over the request's nonce (so an answer belongs to one request and cannot
 *   be replayed onto another), the status, and every header of the answer by name. The relaying
 *   instance checks it before it forwards anything, and forwards only the signed headers.
 * - The body: sent as frames, each `length (4 bytes) | MAC (32 bytes) | data`, the MAC chained
 *   from the head's signature through every frame before it, and a last frame with no data
 *   marking the clean end. The relaying instance checks each frame before it forwards its data,
 *   so an SSE stream still streams, and nothing altered, inserted, reordered or cut short ever
 *   reaches the client: on a bad frame (or a stream that stops before its end frame) the client's
 *   connection is destroyed, never ended cleanly.
 *
 * It is integrity, not secrecy: what crosses the channel can still be read by who can see it.
 */
import { createHmac } from "node:crypto";
import type { OutgoingHttpHeaders, ServerResponse } from "node:http";
import { Transform, type TransformCallback } from "node:stream";
import { constantTimeEqual } from "../crypto/secrets.js";
import { CLUSTER_HEADER_PREFIX } from "./protocol.js";

export const ANSWER_SIGNATURE_HEADER = `${CLUSTER_HEADER_PREFIX}cluster-answer-signature`;
/** The names of the signed answer headers, in signing order (comma-separated, lower case). */
export const ANSWER_HEADERS_HEADER = `${CLUSTER_HEADER_PREFIX}cluster-answer-headers`;

/** Connection fields of an answer: Node sets its own on each hop; never signed. */
const UNSIGNED = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "trailer",
  "upgrade",
  "content-length",
  "date",
]);

const MAC_BYTES = 32;
const FRAME_HEAD = 4 + MAC_BYTES;
/** A frame's data is one write of the owner's; far above any the bridge makes, a bound for the reader. */
const MAX_FRAME = 64 * 1024 * 1024;

type HeaderValue = string | string[] | number | undefined;

function text(value: HeaderValue): string {
  return Array.isArray(value) ? value.join(", ") : value === undefined ? "" : String(value);
}

function headMac(
  key: Buffer,
  nonce: string,
  status: number,
  names: string[],
  headers: Record<string, HeaderValue>,
) {
  const h = createHmac("sha256", key);
  h.update(`v1 answer\n${nonce}\n${status}\n${names.join(",")}`);
  for (const name of names) h.update(`\n${name}:${text(headers[name])}`);
  return h.digest();
}

function frameMac(key: Buffer, previous: Buffer, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  return createHmac("sha256", key).update("v1 frame\n").update(previous).update(length).update(data).digest();
}

/** Whether an answer with this status to this method can carry a body (and so frames). */
export function answerHasBody(method: string, status: number): boolean {
  return method !== "HEAD" && status !== 204 && status !== 304 && status >= 200;
}

/**
 * Makes everything written to `res` from now on a signed answer to the request whose nonce is
 * `nonce` (the owner's side): the head signed when it is written, each write a frame, the end
 * frame on end. The writer (the bridge) needs to know nothing of it.
 */
export function signAnswers(res: ServerResponse, key: Buffer, nonce: string, method: string): void {
  const writeHead = res.writeHead.bind(res) as (status: number, reason?: string) => ServerResponse;
  const write = res.write.bind(res) as (chunk: Buffer, cb?: (err?: Error | null) => void) => boolean;
  const end = res.end.bind(res) as (cb?: () => void) => ServerResponse;
  let chain: Buffer | undefined;
  let framed = false;

  res.writeHead = ((status: number, ...rest: unknown[]) => {
    const reason = typeof rest[0] === "string" ? rest[0] : undefined;
    const given = rest.find((r) => typeof r === "object" && r !== null) as
      | OutgoingHttpHeaders
      | Array<string | string[]>
      | undefined;
    if (Array.isArray(given)) {
      // The raw form: [name, value, name, value…].
      for (let i = 0; i + 1 < given.length; i += 2) res.setHeader(String(given[i]), given[i + 1] as string);
    } else if (given) {
      for (const [name, value] of Object.entries(given)) if (value !== undefined) res.setHeader(name, value);
    }
    // Frames change the length; Node sends the body chunked.
    res.removeHeader("content-length");
    const headers = res.getHeaders() as Record<string, HeaderValue>;
    const names = Object.keys(headers)
      .filter((n) => !UNSIGNED.has(n) && !n.startsWith(CLUSTER_HEADER_PREFIX))
      .sort();
    chain = headMac(key, nonce, status, names, headers);
    framed = answerHasBody(method, status);
    res.setHeader(ANSWER_HEADERS_HEADER, names.join(","));
    res.setHeader(ANSWER_SIGNATURE_HEADER, chain.toString("base64url"));
    return reason === undefined ? writeHead(status) : writeHead(status, reason);
  }) as ServerResponse["writeHead"];

  const frame = (data: Buffer): Buffer => {
    const mac = frameMac(key, chain as Buffer, data);
    chain = mac;
    const head = Buffer.alloc(4);
    head.writeUInt32BE(data.length);
    return Buffer.concat([head, mac, data]);
  };
  const ensureHead = () => {
    if (!res.headersSent) res.writeHead(res.statusCode);
  };
  const bytes = (chunk: unknown, encoding: unknown): Buffer =>
    Buffer.isBuffer(chunk)
      ? chunk
      : chunk instanceof Uint8Array
        ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
        : Buffer.from(String(chunk), typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8");

  res.write = ((chunk: unknown, encoding?: unknown, cb?: unknown) => {
    const callback = (typeof encoding === "function" ? encoding : cb) as
      | ((err?: Error | null) => void)
      | undefined;
    ensureHead();
    const data = bytes(chunk, encoding);
    // An empty frame is the end: an empty write is nothing to send.
    if (!framed || data.length === 0) {
      if (callback) process.nextTick(callback);
      return true;
    }
    return write(frame(data), callback);
  }) as ServerResponse["write"];

  res.end = ((chunk?: unknown, encoding?: unknown, cb?: unknown) => {
    const callback = [chunk, encoding, cb].find((a) => typeof a === "function") as (() => void) | undefined;
    ensureHead();
    if (framed) {
      if (chunk !== undefined && chunk !== null && typeof chunk !== "function") {
        const data = bytes(chunk, encoding);
        if (data.length > 0) write(frame(data));
      }
      write(frame(Buffer.alloc(0)));
    }
    return end(callback);
  }) as ServerResponse["end"];
}

export class AnswerRejected extends Error {}

/**
 * The relaying side's check of the head: the headers to pass on (the signed ones only), or
 * undefined when the answer is not the owner's (unsigned, altered, or for another request).
 */
export function verifiedAnswerHead(
  key: Buffer,
  nonce: string,
  status: number,
  headers: Record<string, string | string[] | undefined>,
): { headers: Record<string, string | string[]>; chain: Buffer } | undefined {
  const signature = headers[ANSWER_SIGNATURE_HEADER];
  const listed = headers[ANSWER_HEADERS_HEADER];
  if (typeof signature !== "string" || typeof listed !== "string") return undefined;
  const names = listed === "" ? [] : listed.split(",");
  if (names.some((n) => UNSIGNED.has(n) || n.startsWith(CLUSTER_HEADER_PREFIX))) return undefined;
  const expected = headMac(key, nonce, status, names, headers);
  if (!constantTimeEqual(signature, expected.toString("base64url"))) return undefined;
  const out: Record<string, string | string[]> = {};
  for (const name of names) {
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  return { headers: out, chain: expected };
}

/**
 * The relaying side's reader of a framed body: passes on each frame's data once its MAC checks
 * out; errors (AnswerRejected) on a bad frame, on anything after the end frame, and on a stream
 * that ends before it.
 */
export class VerifiedFrames extends Transform {
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;

  constructor(
    private readonly key: Buffer,
    private chain: Buffer,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    done(this.consume(chunk));
  }

  /** Passes on every whole frame `chunk` completes; the reason to stop, if any. */
  private consume(chunk: Buffer): AnswerRejected | undefined {
    if (this.ended) return new AnswerRejected("data after the answer's end frame");
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= FRAME_HEAD) {
      const length = this.pending.readUInt32BE(0);
      if (length > MAX_FRAME) return new AnswerRejected("answer frame too large");
      if (this.pending.length < FRAME_HEAD + length) break;
      const mac = this.pending.subarray(4, FRAME_HEAD);
      const data = this.pending.subarray(FRAME_HEAD, FRAME_HEAD + length);
      const expected = frameMac(this.key, this.chain, data);
      if (!constantTimeEqual(mac.toString("base64url"), expected.toString("base64url")))
        return new AnswerRejected("answer frame signature does not match");
      this.chain = expected;
      this.pending = this.pending.subarray(FRAME_HEAD + length);
      if (length === 0) {
        this.ended = true;
        return this.pending.length > 0 ? new AnswerRejected("data after the answer's end frame") : undefined;
      }
      this.push(Buffer.from(data));
    }
    return undefined;
  }

  override _flush(done: TransformCallback): void {
    done(this.ended ? undefined : new AnswerRejected("answer cut short before its end frame"));
  }
}
