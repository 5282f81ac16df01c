/**
 * What the gateway does to upstream answers on a service with a per-tool policy, as streams
 * between the upstream's body and the client: tools/list results lose the tools the caller may
 * not call (a JSON answer, or every event of an SSE answer, one page of a paginated list at a
 * time), and a tools/call answer is read on its way through for how the call ended, unchanged.
 */
import { Transform, type TransformCallback } from "node:stream";
import { EventTooLarge, SseEventReader, serializeEvent } from "./sse-events.js";

/** How the upstream's body is framed, from its content type. */
export type AnswerKind = "json" | "sse";

/** The largest answer (JSON) or event (SSE) filtered; past it the stream fails, never leaks. */
const MAX_FILTERED = 16 * 1024 * 1024;
/** How much of a tools/call answer is kept to read its outcome; past it the outcome is unknown. */
const MAX_OBSERVED = 1024 * 1024;

export function answerKind(contentType: string): AnswerKind | undefined {
  const type = contentType.split(";")[0]?.trim().toLowerCase();
  if (type === "application/json") return "json";
  if (type === "text/event-stream") return "sse";
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Drops from a JSON-RPC response (or a batch of them) every listed tool `keep` refuses.
 * Returns whether anything was a tools list (then the message was changed in place).
 */
function filterMessage(message: unknown, keep: (tool: string) => boolean): boolean {
  if (Array.isArray(message)) {
    let any = false;
    for (const m of message) any = filterMessage(m, keep) || any;
    return any;
  }
  if (!isObject(message) || !isObject(message.result) || !Array.isArray(message.result.tools)) return false;
  message.result.tools = message.result.tools.filter(
    (tool: unknown) => isObject(tool) && typeof tool.name === "string" && keep(tool.name),
  );
  return true;
}

/** A stream that filters tools/list results out of an answer of `kind`. */
export function toolListFilter(kind: AnswerKind, keep: (tool: string) => boolean): Transform {
  return kind === "json" ? new JsonListFilter(keep) : new SseListFilter(keep);
}

class JsonListFilter extends Transform {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly keep: (tool: string) => boolean) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > MAX_FILTERED) {
      done(new EventTooLarge());
      return;
    }
    this.chunks.push(chunk);
    done();
  }
  override _flush(done: TransformCallback): void {
    const bytes = Buffer.concat(this.chunks, this.size);
    const message = parse(bytes.toString("utf8"));
    // Not JSON: no client can read a list from it either; it goes as it came.
    done(null, message !== undefined && filterMessage(message, this.keep) ? JSON.stringify(message) : bytes);
  }
}

class SseListFilter extends Transform {
  private readonly reader = new SseEventReader(MAX_FILTERED);
  constructor(private readonly keep: (tool: string) => boolean) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      const out = this.reader.push(chunk).map((e) => this.rewrite(e.lines, e.data));
      done(null, out.length > 0 ? out.join("") : undefined);
    } catch (err) {
      done(err as Error);
    }
  }
  override _flush(done: TransformCallback): void {
    const last = this.reader.end();
    done(null, last ? this.rewrite(last.lines, last.data) : undefined);
  }
  private rewrite(lines: string[], data: string | undefined): string {
    const message = data === undefined ? undefined : parse(data);
    if (message === undefined || !filterMessage(message, this.keep)) return serializeEvent(lines);
    // The data lines become one, where the first was; the other fields (id, event) stay.
    const out: string[] = [];
    let placed = false;
    for (const line of lines) {
      if (line === "data" || line.startsWith("data:")) {
        if (!placed) out.push(`data: ${JSON.stringify(message)}`);
        placed = true;
      } else {
        out.push(line);
      }
    }
    return serializeEvent(out);
  }
}

/** How a tools/call ended, from its JSON-RPC response. */
export function callOutcome(response: Record<string, unknown>): string {
  if (response.error !== undefined) return "error";
  const result = isObject(response.result) ? response.result : {};
  if (result.resultType === "input_required") return "input_required";
  return result.isError === true ? "tool_error" : "ok";
}

/**
 * Passes a tools/call answer through unchanged, telling `seen` the outcome once it has read the
 * response to request `id` (JSON: the whole answer; SSE: the event carrying it).
 */
export function toolCallObserver(kind: AnswerKind, id: unknown, seen: (outcome: string) => void): Transform {
  return kind === "json" ? new JsonCallObserver(seen) : new SseCallObserver(id, seen);
}

class JsonCallObserver extends Transform {
  private chunks: Buffer[] | undefined = [];
  private size = 0;
  constructor(private readonly seen: (outcome: string) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.chunks) {
      this.size += chunk.length;
      if (this.size > MAX_OBSERVED) this.chunks = undefined;
      else this.chunks.push(chunk);
    }
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    const message = this.chunks ? parse(Buffer.concat(this.chunks).toString("utf8")) : undefined;
    if (isObject(message)) this.seen(callOutcome(message));
    done();
  }
}

class SseCallObserver extends Transform {
  private reader: SseEventReader | undefined = new SseEventReader(MAX_OBSERVED);
  constructor(
    private readonly id: unknown,
    private readonly seen: (outcome: string) => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.reader) {
      try {
        for (const event of this.reader.push(chunk)) this.look(event.data);
      } catch {
        this.reader = undefined; // an event too large to read: the outcome stays unknown
      }
    }
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    this.look(this.reader?.end()?.data);
    done();
  }
  private look(data: string | undefined): void {
    if (!this.reader || data === undefined) return;
    const message = parse(data);
    if (isObject(message) && message.id === this.id && message.method === undefined) {
      this.seen(callOutcome(message));
      this.reader = undefined; // the rest of the stream is not the gateway's business
    }
  }
}
