/**
 * The SSE reader the tools/list filter stands on: however the upstream's stream is cut into
 * chunks, and whatever line ends it uses, the same events come out; an event past the bound
 * fails rather than passes unread.
 */
import { describe, expect, it } from "vitest";
import { EventTooLarge, SseEventReader } from "../../src/gateway/sse-events.js";

const STREAM =
  'event: message\r\nid: 1\r\ndata: {"a":\r\ndata: 1}\r\n\r\n: a comment\n\ndata:{"é":"ü"}\n\nretry: 10\ndata\n\n';

function read(chunks: Buffer[]) {
  const reader = new SseEventReader(1024);
  const events = chunks.flatMap((c) => reader.push(c));
  const last = reader.end();
  return last ? [...events, last] : events;
}

describe("SseEventReader", () => {
  it("gives the same events for every way of cutting the stream, byte by byte included", () => {
    const bytes = Buffer.from(STREAM, "utf8");
    const whole = read([bytes]);
    expect(whole.map((e) => e.data)).toEqual(['{"a":\n1}', undefined, '{"é":"ü"}', ""]);
    expect(whole[0]?.lines).toEqual(["event: message", "id: 1", 'data: {"a":', "data: 1}"]);
    for (let cut = 1; cut < bytes.length; cut++) {
      expect(read([bytes.subarray(0, cut), bytes.subarray(cut)])).toEqual(whole);
    }
    expect(read([...bytes].map((b) => Buffer.from([b])))).toEqual(whole);
  });

  it("fails on an event larger than its bound, even one never closed", () => {
    const reader = new SseEventReader(64);
    expect(() => reader.push(Buffer.from(`data: ${"x".repeat(100)}`))).toThrow(EventTooLarge);
  });
});
