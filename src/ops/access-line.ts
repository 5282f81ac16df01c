/**
 * The access line, `request completed`, built as one string and handed to the logger's own
 * destination: byte for byte what `log.info({ req, res, responseTime }, "request completed")`
 * writes through pino with the gateway's serializers (test/ops/access-line.test.ts), without
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

/** The request as the line names it: the request serializer's fields (src/ops/log-output.ts). */
export interface AccessRequest {
  method: string;
  /** The URL's path: never its query string, where codes and tokens travel. */
  path: string;
  ip: string;
}

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

/**
 * Writes the access line for one request through `log` (the app's logger, or a fastify
 * request's child logger, whose bindings add `reqId`), at info, when `log` logs info.
 */
export function writeAccessLine(
  log: FastifyBaseLogger,
  req: AccessRequest,
  statusCode: number,
  responseTime: number,
): void {
  if (!isPlainPino(log)) {
    // The request serializer's input shape (src/ops/log-output.ts); the path has no query left.
    log.info(
      { req: { method: req.method, url: req.path, ip: req.ip }, res: { statusCode }, responseTime },
      COMPLETED,
    );
    return;
  }
  if (!log.isLevelEnabled("info")) return;
  // pino writes a non-finite number as null (a duration never is one).
  const took = Number.isFinite(responseTime) ? responseTime : null;
  log[S.streamSym].write(
    // `{"level":30` `,"time":"…"` `,"pid":…,"hostname":"…"[,"reqId":"…"]`: pino's own parts.
    `${log[S.lsCacheSym][INFO]}${log[S.timeSym]()}${log[S.chindingsSym]}` +
      `,"req":{"method":${JSON.stringify(req.method)},"path":${JSON.stringify(req.path)},` +
      `"ip":${JSON.stringify(req.ip)}},"res":{"statusCode":${statusCode}},` +
      `"responseTime":${took},"${log[S.messageKeySym]}":${MESSAGE}${log[S.endSym]}`,
  );
}
