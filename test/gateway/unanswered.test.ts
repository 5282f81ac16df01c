/**
 * The request-id bookkeeping behind the proxy's answer for an upstream that dies: which ids a
 * body asks, and which of them an SSE stream has answered, however the stream is split into
 * chunks on the wire.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { requestIds, SseAnswers, TRACKED_BODY_LIMIT } from "../../src/gateway/unanswered.js";

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe("requestIds", () => {
  it("requests only: not notifications, not responses, not null ids", () => {
    const body = json([
      { jsonrpc: "2.0", id: 1, method: "tools/call" },
      { jsonrpc: "2.0", method: "notifications/initialized" },
      { jsonrpc: "2.0", id: 2, result: {} },
      { jsonrpc: "2.0", id: null, method: "x" },
      { jsonrpc: "2.0", id: "b", method: "tools/list" },
    ]);
    expect(requestIds(body)).toEqual([1, "b"]);
    expect(requestIds(json({ jsonrpc: "2.0", id: 0, method: "ping" }))).toEqual([0]);
    expect(requestIds(Buffer.from("{not json"))).toEqual([]);
  });
});

describe("SseAnswers", () => {
  const event = (data: unknown, eol = "\n") =>
    `event: message${eol}data: ${JSON.stringify(data)}${eol}${eol}`;

  it("however the stream is chunked, exactly the unanswered ids remain", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
        fc.constantFrom("\n", "\r\n"),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 20 }),
        (ids, answeredFlags, eol, cuts) => {
          const answered = ids.filter((_, i) => answeredFlags[i]);
          let stream = event(
            { jsonrpc: "2.0", method: "notifications/message", params: { id: ids[0] } },
            eol,
          );
          // A server-to-client request reusing an id is not an answer.
          stream += event({ jsonrpc: "2.0", id: ids[0], method: "sampling/createMessage" }, eol);
          for (const id of answered)
            stream += event({ jsonrpc: "2.0", id, result: { text: "ü".repeat(5) } }, eol);
          const watcher = new SseAnswers(ids);
          const bytes = Buffer.from(stream);
          let at = 0;
          for (const cut of cuts) {
            watcher.see(bytes.subarray(at, Math.min(bytes.length, at + cut)));
            at = Math.min(bytes.length, at + cut);
          }
          watcher.see(bytes.subarray(at));
          const left = ids.filter((id) => !answered.includes(id));
          expect(watcher.settled).toBe(left.length === 0);
          const closing = watcher.closing("gone");
          const errorIds = closing
            .split("\n\n")
            .filter((e) => e.includes("data: "))
            .map((e) => JSON.parse(e.slice(e.indexOf("data: ") + 6)).id);
          expect(errorIds).toEqual(left);
        },
      ),
    );
  });

  it("an event too big to parse leaves its id pending (told twice rather than never)", () => {
    const watcher = new SseAnswers([1]);
    watcher.see(
      Buffer.from(event({ jsonrpc: "2.0", id: 1, result: { text: "x".repeat(TRACKED_BODY_LIMIT) } })),
    );
    expect(watcher.settled).toBe(false);
    // ...and the events after it are read again.
    const other = new SseAnswers([1, 2]);
    other.see(
      Buffer.from(event({ jsonrpc: "2.0", id: 1, result: { text: "x".repeat(TRACKED_BODY_LIMIT) } })),
    );
    other.see(Buffer.from(event({ jsonrpc: "2.0", id: 2, result: {} })));
    expect(other.closing("gone")).toContain('"id":1');
    expect(other.closing("gone")).not.toContain('"id":2');
  });

  it("a half-written event is closed before the errors", () => {
    const watcher = new SseAnswers([3]);
    watcher.see(Buffer.from('event: message\ndata: {"jsonrpc":"2.0","id":3,"res'));
    expect(watcher.closing("gone").startsWith("\n\nevent: message\ndata: ")).toBe(true);
  });
});
