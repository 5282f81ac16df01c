/**
 * The access line, `request completed`, built as one string and handed to the logger's own
 * destination: byte for byte what `log.info({ req, res, responseTime }, "request completed")`
 * (responseTime in ms to the microsecond) writes through pino with the gateway's serializers (test/ops/access-line.test.ts), without
 * pino's per-call walk over the object, its serializers and stringifiers. It is the one line
 * written for every request, and building it through pino cost about as much CPU as the whole
 * cached /verify answer (bench/RESULTS.md).
 *
 * The parts pino would write the same for every line of a logger (the level's prefix, the
 * bindings: pid, hostname, a fastify request id) are pino's own strings, read from the logger,
 * so the line follows the logger's configuration rather than a copy of it. A logger that is
 * not pino (fastify's no-op logger when logging is off) gets its ordinary `info` call.
 */
import type { FastifyBaseLogger } from "fastify";
import pino from "pino";

export const COMPLETED = "request completed";

const S = pino.symbols;

/** The pino internals the line is built from (public as `pino.symbols`, for integrations). */
interface PinoParts {
  isLevelEnabled(level: string): boolean;
  [S.lsCacheSym]: Record<number, string>;
  [S.chindingsSym]: string;
  [S.endSym]: string;
  [S.messageKeySym]: string;
  [S.streamSym]: { write(line: string): unknown; [S.needsMetadataGsym]?: boolean };
  [S.timeSym]: () => string;
  [S.formattersSym]?: { log?: unknown };
  [S.hooksSym]?: { streamWrite?: unknown };
  [S.mixinSym]?: unknown;
  [S.nestedKeySym]?: unknown;
}

/** pino's number for info. */
const INFO = pino.levels.values.info as number;
const MESSAGE = JSON.stringify(COMPLETED);

/**
 * Whether `log` is a pino logger whose info line this module can write as pino would: none of
 * the options that reshape a line (a log formatter, a mixin, a nested key, a write hook, a
 * destination that wants each line's metadata). The gateway's own logger sets none of them.
 */
function isPlainPino(log: FastifyBaseLogger): log is FastifyBaseLogger & PinoParts {
  const parts = log as unknown as Partial<PinoParts>;
  const stream = parts[S.streamSym];
  return (
    typeof stream?.write === "function" &&
    stream[S.needsMetadataGsym] !== true &&
    typeof parts[S.timeSym] === "function" &&
    typeof parts[S.chindingsSym] === "string" &&
    typeof parts[S.lsCacheSym]?.[INFO] === "string" &&
    typeof parts[S.messageKeySym] === "string" &&
    typeof parts[S.endSym] === "string" &&
    !parts[S.formattersSym]?.log &&
    !parts[S.hooksSym]?.streamWrite &&
    !parts[S.mixinSym] &&
    !parts[S.nestedKeySym]
  );
}

/** The path of a request URL: everything before `?`. */
export function pathOf(url: string): string {
  const query = url.indexOf("?");
  return query < 0 ? url : url.slice(0, query);
}

/** Writes access lines through one logger. */
export interface AccessLines {
  /**
   * Whether a line would be written (the logger logs info): asked before the line's parts are
   * worked out, so that a gateway that logs nothing spends nothing on them.
   */
  enabled(): boolean;
  /**
   * One line. `reqId`: the request's id, written where a fastify request's child logger has it
   * (a shortcut's line then reads as the route's would); only for a logger without one of its own.
   */
  write(
    method: string,
    path: string,
    ip: string,
    statusCode: number,
    responseTime: number,
    reqId?: string,
  ): void;
}

/** fastify's name for the request id in a request's log bindings (LogController's default). */
export const REQ_ID_LABEL = "reqId";

/** JSON for a string, remembering the last one: a gateway's lines repeat their method, path and client. */
class Quoted {
  private raw = "";
  private json = '""';

  of(value: string): string {
    if (value !== this.raw) {
      this.raw = value;
      this.json = JSON.stringify(value);
    }
    return this.json;
  }
}

/**
 * A duration in ms to the microsecond, as the line writes it: the shortest form of an arbitrary
 * double costs more than the rest of the line (about 0.6 µs), and no one reads the nanoseconds.
 */
export function toMicros(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** The written fraction of each count of microseconds in a millisecond: "", ".001" … ".999", trailing zeros dropped. */
const FRACTIONS = Array.from({ length: 1000 }, (_, f) =>
  f === 0 ? "" : `.${String(f).padStart(3, "0").replace(/0+$/, "")}`,
);
/** Whole microseconds written from FRACTIONS up to here (checked exact to there; no duration is near). */
const FRACTIONS_UP_TO = 1e15;

/**
 * `toMicros(ms)` as the line writes it (`null` when it is not finite, as pino writes it), from the
 * whole microseconds and a table: what JavaScript writes for `n / 1000`, without its shortest
 * round-trip conversion of a double, a quarter of the line's cost (about 0.3 µs).
 */
export function microsJson(ms: number): string {
  const us = Math.round(ms * 1000);
  if (us >= 0 && us < FRACTIONS_UP_TO) {
    const whole = Math.floor(us / 1000);
    return `${whole}${FRACTIONS[us - whole * 1000]}`;
  }
  const micros = us / 1000;
  return Number.isFinite(micros) ? String(micros) : "null";
}

/** A pino logger's access lines, its fixed parts read from it once. */
class PinoAccessLines implements AccessLines {
  private readonly method = new Quoted();
  private readonly path = new Quoted();
  private readonly ip = new Quoted();
  /** `{"level":30` */
  private readonly head: string;
  /** `,"pid":…,"hostname":"…"[,"reqId":"…"]` */
  private readonly bindings: string;
  /** `,"msg":"request completed"}\n` */
  private readonly tail: string;
  private readonly stream: PinoParts[typeof S.streamSym];
  private readonly time: () => string;

  constructor(private readonly log: FastifyBaseLogger & PinoParts) {
    this.head = log[S.lsCacheSym][INFO] as string;
    this.bindings = log[S.chindingsSym];
    this.tail = `,"${log[S.messageKeySym]}":${MESSAGE}${log[S.endSym]}`;
    this.stream = log[S.streamSym];
    this.time = log[S.timeSym];
  }

  enabled(): boolean {
    return this.log.isLevelEnabled("info");
  }

  write(
    method: string,
    path: string,
    ip: string,
    statusCode: number,
    responseTime: number,
    reqId?: string,
  ): void {
    if (!this.enabled()) return;
    // What a child logger's bindings add for `{ reqId }`: pino appends `,"key":value` to its parent's.
    const id = reqId === undefined ? "" : `,"${REQ_ID_LABEL}":${JSON.stringify(reqId)}`;
    this.stream.write(
      `${this.head}${this.time()}${this.bindings}${id},"req":{"method":${this.method.of(method)},` +
        `"path":${this.path.of(path)},"ip":${this.ip.of(ip)}},"res":{"statusCode":${statusCode}},` +
        `"responseTime":${microsJson(responseTime)}${this.tail}`,
    );
  }
}

/** Any other logger (fastify's no-op one when logging is off): its own `info` call. */
class OtherAccessLines implements AccessLines {
  constructor(private readonly log: FastifyBaseLogger) {}

  /** Its own `info` decides. */
  enabled(): boolean {
    return true;
  }

  write(
    method: string,
    path: string,
    ip: string,
    statusCode: number,
    responseTime: number,
    reqId?: string,
  ): void {
    // The request serializer's input shape (src/ops/log-output.ts); the path has no query left.
    const record = {
      req: { method, url: path, ip },
      res: { statusCode },
      responseTime: toMicros(responseTime),
    };
    this.log.info(reqId === undefined ? record : { [REQ_ID_LABEL]: reqId, ...record }, COMPLETED);
  }
}

/**
 * The access lines of `log` (the app's logger, or a fastify request's child logger, whose
 * bindings add `reqId`), at info, written when `log` logs info (`enabled()`). Its bindings are read now: make
 * it once per logger whose bindings stay, and again for a new child.
 */
export function accessLines(log: FastifyBaseLogger): AccessLines {
  return isPlainPino(log) ? new PinoAccessLines(log) : new OtherAccessLines(log);
}
