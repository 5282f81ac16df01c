/** The cached ISO time field writes exactly what Date's toISOString does, in any order of calls. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isoTimeField } from "../../src/ops/log-time.js";

const expected = (ms: number) => `,"time":"${new Date(ms).toISOString()}"`;
/** 1970 to 9999, the years toISOString writes with four digits. */
const instant = fc.integer({ min: 0, max: 253_402_300_799_999 });

describe("isoTimeField", () => {
  it("matches toISOString for any sequence of instants, near each other or not", () => {
    fc.assert(
      fc.property(
        instant,
        fc.array(fc.integer({ min: -2500, max: 2500 }), { maxLength: 50 }),
        (start, steps) => {
          let now = start;
          for (const step of [0, ...steps]) {
            now = Math.min(Math.max(now + step, 0), 253_402_300_799_999);
            expect(isoTimeField(now)).toBe(expected(now));
          }
        },
      ),
    );
  });

  it("is right at the edges of a second", () => {
    for (const ms of [0, 999, 1000, 1_764_547_199_999, 1_764_547_200_000, 1_764_547_200_001]) {
      expect(isoTimeField(ms)).toBe(expected(ms));
    }
  });
});
