/**
 * The `time` field of a log line, ISO-8601 in UTC: `,"time":"2026-11-01T12:00:00.000Z"`, what
 * pino's `stdTimeFunctions.isoTime` writes, at the cost of its `epochTime`. isoTime formats a
 * Date for every line (about 1 µs here, against 0.08 µs for epoch milliseconds); this formats
 * the date and time once a second and appends the milliseconds (0.09 µs), so the per-request
 * line costs what it did with epoch times (bench: /verify with the access log on).
 */

/** "000" … "999". */
const MILLIS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, "0"));

let cachedSecond = Number.NaN;
/** `,"time":"YYYY-MM-DDTHH:MM:SS.` of `cachedSecond`. */
let cachedPrefix = "";

/** The field for `now` (epoch ms, from 1970 to 9999). */
export function isoTimeField(now: number): string {
  const second = Math.floor(now / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedPrefix = `,"time":"${new Date(second * 1000).toISOString().slice(0, 20)}`;
  }
  return `${cachedPrefix}${MILLIS[now - second * 1000]}Z"`;
}

/** pino's `timestamp` option. */
export const isoTime = (): string => isoTimeField(Date.now());
