/**
 * Time-zone arithmetic on IANA names with nothing but Intl: the wall-clock time of an instant in
 * a zone, its UTC offset and whether daylight saving is in effect, and the instant of a wall time.
 */

/** Wall-clock view of one instant in one zone, as the Python reference time server reports it. */
export interface ZonedTime {
  timezone: string;
  /** ISO 8601 with seconds and offset, e.g. 2025-07-01T14:30:00+02:00 */
  datetime: string;
  /** English weekday name, e.g. Tuesday */
  day_of_week: string;
  is_dst: boolean;
}

/** Thrown for a name Intl does not know as a time zone. */
export class InvalidTimezoneError extends Error {
  constructor(readonly timezone: string) {
    super(`Invalid timezone: '${timezone}'. Use an IANA time zone name such as 'Europe/London' or 'UTC'.`);
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** A cached formatter that yields every wall-clock field of an instant in `timezone`. */
function formatter(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (!f) {
    // Intl accepts only IANA names (and UTC offsets on newer runtimes), and throws RangeError otherwise.
    if (!timezone.trim() || /^[+-]/.test(timezone)) throw new InvalidTimezoneError(timezone);
    try {
      f = new Intl.DateTimeFormat("en-US", {
        timeZone: timezone,
        hourCycle: "h23",
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
        weekday: "long",
      });
    } catch {
      throw new InvalidTimezoneError(timezone);
    }
    formatters.set(timezone, f);
  }
  return f;
}

/** Check a zone name; throws InvalidTimezoneError. */
export function assertTimezone(timezone: string): void {
  formatter(timezone);
}

interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  weekday: string;
}

function wallClock(instant: number, timezone: string): WallClock {
  const parts: Record<string, string> = {};
  for (const p of formatter(timezone).formatToParts(new Date(instant))) parts[p.type] = p.value;
  return {
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    second: Number(parts.second),
    weekday: parts.weekday ?? "",
  };
}

/** UTC offset of `timezone` at `instant`, in minutes (east positive). */
export function offsetMinutes(instant: number, timezone: string): number {
  const w = wallClock(instant, timezone);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return Math.round((asUtc - Math.floor(instant / 1000) * 1000) / 60_000);
}

/** Daylight saving is on when the offset exceeds the zone's standard (lesser) offset of that year. */
function isDst(instant: number, timezone: string): boolean {
  const year = new Date(instant).getUTCFullYear();
  const jan = offsetMinutes(Date.UTC(year, 0, 1), timezone);
  const jul = offsetMinutes(Date.UTC(year, 6, 1), timezone);
  return jan !== jul && offsetMinutes(instant, timezone) > Math.min(jan, jul);
}

const pad = (n: number, width = 2) => String(Math.abs(n)).padStart(width, "0");

function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? "-" : "+";
  return `${sign}${pad(Math.floor(Math.abs(minutes) / 60))}:${pad(Math.abs(minutes) % 60)}`;
}

/** The wall-clock view of `instant` in `timezone`. */
export function zonedTime(instant: number, timezone: string): ZonedTime {
  const w = wallClock(instant, timezone);
  const date = `${pad(w.year, 4)}-${pad(w.month)}-${pad(w.day)}`;
  const time = `${pad(w.hour)}:${pad(w.minute)}:${pad(w.second)}`;
  return {
    timezone,
    datetime: `${date}T${time}${formatOffset(offsetMinutes(instant, timezone))}`,
    day_of_week: w.weekday,
    is_dst: isDst(instant, timezone),
  };
}

/**
 * The instant at which clocks in `timezone` show `hour:minute` on the given date. Across a DST
 * gap or overlap this lands on one of the candidate instants, as a wall-clock library would.
 */
export function instantOfWallTime(
  date: { year: number; month: number; day: number },
  hour: number,
  minute: number,
  timezone: string,
): number {
  const wall = Date.UTC(date.year, date.month - 1, date.day, hour, minute);
  let guess = wall - offsetMinutes(wall, timezone) * 60_000;
  // A second pass corrects a guess that fell on the other side of an offset change.
  guess = wall - offsetMinutes(guess, timezone) * 60_000;
  return guess;
}

/** Today's date in `timezone`. */
export function todayIn(timezone: string, now = Date.now()): { year: number; month: number; day: number } {
  const w = wallClock(now, timezone);
  return { year: w.year, month: w.month, day: w.day };
}

/** `+5.75h`, `-3.0h`: the Python reference server's way of writing an hour difference. */
export function formatHourDifference(minutes: number): string {
  const hours = minutes / 60;
  const sign = hours < 0 ? "-" : "+";
  if (Number.isInteger(hours)) return `${sign}${Math.abs(hours).toFixed(1)}h`;
  return `${sign}${Math.abs(hours).toFixed(2).replace(/0+$/, "").replace(/\.$/, "")}h`;
}
