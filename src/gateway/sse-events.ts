/**
 * Server-sent events as they stream through (WHATWG HTML §9.2): lines split on LF (a CR before
 * it dropped), an empty line ending each event. Only the events are cut out; their fields are
 * kept as the upstream wrote them, so an event can be passed on unchanged or rebuilt. A
 * single event larger than the bound is an error: the caller fails the stream rather than
 * pass on what it could not read. (A stream that ends lines with a lone CR is never cut into
 * events, so it too ends at the bound.)
 */
import { StringDecoder } from "node:string_decoder";

export interface SseEvent {
  /** Every line of the event, without line ends (the closing empty line not included). */
  lines: string[];
  /** The `data` field: its lines joined with LF; undefined when the event has none. */
  data?: string;
}

export class EventTooLarge extends Error {}

export class SseEventReader {
  private readonly decoder = new StringDecoder("utf8");
  private pending = "";
  private lines: string[] = [];

  constructor(private readonly maxEventChars: number) {}

  /** Feeds a chunk; returns the events it completed. Throws EventTooLarge past the bound. */
  push(chunk: Buffer): SseEvent[] {
    this.pending += this.decoder.write(chunk);
    const events: SseEvent[] = [];
    let start = 0;
    for (;;) {
      const lf = this.pending.indexOf("\n", start);
      if (lf < 0) break;
      let line = this.pending.slice(start, lf);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      start = lf + 1;
      if (line === "") {
        if (this.lines.length > 0) events.push(toEvent(this.lines));
        this.lines = [];
      } else {
        this.lines.push(line);
      }
    }
    this.pending = this.pending.slice(start);
    const held = this.pending.length + this.lines.reduce((n, l) => n + l.length + 1, 0);
    if (held > this.maxEventChars) throw new EventTooLarge();
    return events;
  }

  /** What is left when the stream ends: an event not closed by an empty line, if any. */
  end(): SseEvent | undefined {
    this.pending += this.decoder.end();
    if (this.pending !== "") this.lines.push(this.pending.replace(/\r$/, ""));
    this.pending = "";
    const last = this.lines.length > 0 ? toEvent(this.lines) : undefined;
    this.lines = [];
    return last;
  }
}

function toEvent(lines: string[]): SseEvent {
  let data: string | undefined;
  for (const line of lines) {
    if (!line.startsWith("data")) continue;
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    if (name !== "data") continue;
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    data = data === undefined ? value : `${data}\n${value}`;
  }
  return data === undefined ? { lines } : { lines, data };
}

/** An event written back out: its lines, the closing empty line. */
export function serializeEvent(lines: readonly string[]): string {
  return `${lines.join("\n")}\n\n`;
}
