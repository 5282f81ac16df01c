/**
 * The access line written without pino's per-call machinery is the line pino writes for the
 * same record through the gateway's own logger configuration (fastify's logger with the
 * gateway's serializers), for any request: odd methods, paths and addresses with quotes,
 * backslashes, control characters and non-ASCII, any status and duration; on the app's logger
 * and on a request's child logger (with fastify's reqId).
 */
import fc from "fast-check";
import Fastify, { type FastifyBaseLogger } from "fastify";
import { describe, expect, it } from "vitest";
import { validateConfig } from "../../src/config/load.js";
import { accessLines, COMPLETED, microsJson, pathOf, toMicros } from "../../src/ops/access-line.js";
import { loggerOptions } from "../../src/ops/log-output.js";

/** The time differs between two calls (a millisecond may pass); everything else must not. */
const sameTime = (line: string) => line.replace(/"time":"[^"]*"/, '"time":"T"');

async function logger(level = "info") {
  const lines: string[] = [];
  const config = validateConfig({ log_level: level });
  const app = Fastify({ logger: await loggerOptions(config, { write: (l) => lines.push(l) }) });
  await app.ready();
  return { app, lines };
}

describe("accessLines", () => {
  it("writes what pino writes for the same record, byte for byte", async () => {
    const { app, lines } = await logger();
    const text = fc.string({ unit: "binary", maxLength: 60 });
    fc.assert(
      fc.property(
        text,
        text,
        text,
        fc.integer({ min: 100, max: 599 }),
        fc.oneof(
          fc.double({ min: 0, max: 1e6 }),
          fc.double({ min: -1e3, max: 1e16 }),
          fc.integer({ min: 0, max: 1e9 }).map((us) => us / 1000),
          fc.constantFrom(0, -0, 1e12, 1e21, -1.5, Number.NaN, Number.POSITIVE_INFINITY),
        ),
        fc.boolean(),
        (method, url, ip, status, ms, child) => {
          const log: FastifyBaseLogger = child ? app.log.child({ reqId: "req-1" }) : app.log;
          lines.length = 0;
          // Twice through the same writer: the second line reuses what the first quoted.
          const writer = accessLines(log);
          log.info(
            { req: { method, url, ip }, res: { statusCode: status }, responseTime: toMicros(ms) },
            COMPLETED,
          );
          writer.write("POST", "/other", "192.0.2.1", 201, 1);
          writer.write(method, pathOf(url), ip, status, ms);
          expect(lines).toHaveLength(3);
          expect(sameTime(lines[2] as string)).toBe(sameTime(lines[0] as string));
          const record = JSON.parse(lines[2] as string);
          expect(record.req).toEqual({ method, path: pathOf(url), ip });
          expect(record.reqId).toBe(child ? "req-1" : undefined);
          // The app's own writer given the id writes the child's line (what a shortcut does).
          if (child) {
            accessLines(app.log).write(method, pathOf(url), ip, status, ms, "req-1");
            expect(sameTime(lines[3] as string)).toBe(sameTime(lines[0] as string));
          }
        },
      ),
    );
    await app.close();
  });

  it("writes a duration's microseconds as JSON writes the number", () => {
    // Every count of microseconds up to 2 s, and a spread beyond, against JSON.stringify.
    const wrong: number[] = [];
    for (let us = 0; us <= 2_000_000; us++) {
      const ms = us / 1000;
      if (microsJson(ms) !== JSON.stringify(toMicros(ms))) wrong.push(ms);
    }
    expect(wrong).toEqual([]);
    fc.assert(
      fc.property(fc.double({ noNaN: false }), (ms) => {
        expect(microsJson(ms)).toBe(JSON.stringify(toMicros(ms)));
      }),
      { numRuns: 20_000 },
    );
  });

  it("writes nothing when the logger does not log info", async () => {
    const { app, lines } = await logger("warn");
    const access = accessLines(app.log);
    expect(access.enabled()).toBe(false);
    access.write("GET", "/verify", "127.0.0.1", 200, 1);
    expect(lines).toEqual([]);
    await app.close();
  });
});
