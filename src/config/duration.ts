/**
 * Durations in config: a number of seconds, or a string like `90`, `30s`, `30m`, `12h`, `90d`, `2w`.
 * Returns whole seconds; throws a one-line message on anything else.
 */
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

export function parseDuration(input: string | number): number {
  if (typeof input === "number") {
    if (!Number.isFinite(input) || input < 0) throw new Error(`not a duration: ${input}`);
    return Math.floor(input);
  }
  const match = /^\s*(\d+)\s*([smhdw]?)\s*$/i.exec(input);
  if (!match) throw new Error(`not a duration: "${input}" (use seconds, or 30s, 30m, 12h, 90d, 2w)`);
  const unit = (match[2] ?? "").toLowerCase() || "s";
  return Number(match[1]) * (UNIT_SECONDS[unit] ?? 1);
}
