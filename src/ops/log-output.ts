/**
 * The gateway's logger: pino, ISO-8601 times, no secrets in any line; JSON lines for machines (a pipe,
 * a file, journald, a container runtime) and readable lines for a person at a terminal.
 *
 * pino-pretty is loaded only when lines are to be pretty: it is a few hundred milliseconds of
 * start-up a service under a supervisor should not pay, and JSON output never touches it.
 */
import type { FastifyServerOptions } from "fastify";
import type { GatewayConfig } from "../config/schema.js";
import { pathOf } from "./access-line.js";
import { LogBatch } from "./log-batch.js";
import { isoTime } from "./log-time.js";

/**
 * What may appear in a log line about a request: never a query string (codes), never a header
 * (Authorization, Cookie). It is the whole of what a `req` field becomes, whatever object is
 * logged under it, and fastify's `res` serializer writes the status code alone: so no line
 * carries a header, and pino's `redact` (fast-redact, a per-line cost) has nothing to remove.
 * `req` is the request log's view (src/ops/request-log.ts), whose `ip` was decided once per
 * request and never reads the socket, which may be gone when a streamed answer ends.
 */
const requestSerializer = (req: { method: string; url: string; ip?: string }) => ({
  method: req.method,
  path: pathOf(req.url),
  ip: req.ip,
});

export interface LogLine {
  write(line: string): void;
}

/** Whether log lines are for a person: asked for, or stdout is a terminal. */
export function prettyLogs(config: Pick<GatewayConfig, "log_format">): boolean {
  if (config.log_format !== "auto") return config.log_format === "pretty";
  return Boolean(process.stdout.isTTY);
}

/**
 * How long a line may wait for others before they are written together: a quiet gateway's
 * lines appear within this; a busy one makes one write(2) per this (src/ops/log-batch.ts).
 */
const BATCH_MS = 10;

/**
 * Where JSON lines go: stdout by default, in batches written asynchronously (src/ops/log-batch.ts),
 * so neither a slow reader nor a write call per line costs a request its time. What is not yet
 * written when the process exits is written synchronously then: no line is lost at shutdown.
 */
export function logDestination(dest: number | string = 1): LogLine {
  return new LogBatch(dest, BATCH_MS);
}

/** fastify's `logger` option for `config`; `stream` replaces stdout (tests, the bench). */
export async function loggerOptions(
  config: Pick<GatewayConfig, "log_level" | "log_format">,
  stream?: LogLine,
): Promise<FastifyServerOptions["logger"]> {
  const base = {
    level: config.log_level,
    // `"time":"2026-11-01T12:00:00.000Z"` rather than epoch milliseconds: what people and log
    // shippers both read without a conversion (pino's isoTime, cheaper: src/ops/log-time.ts).
    timestamp: isoTime,
    serializers: { req: requestSerializer },
  };
  if (stream) return { ...base, stream };
  if (!prettyLogs(config)) return { ...base, stream: logDestination() };
  return { ...base, stream: await prettyStream() };
}

type LogRecord = Record<string, unknown> & {
  req?: { method?: string; path?: string };
  res?: { statusCode?: number };
  responseTime?: number;
};

/** One readable line per record: `[time] LEVEL: message GET /path 200 1.2 ms {other fields}`. */
async function prettyStream(): Promise<LogLine> {
  const { default: pretty } = await import("pino-pretty");
  return pretty({
    // Synchronous writes to stdout, as the JSON logger makes them: nothing lost at exit.
    sync: true,
    colorize: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR,
    singleLine: true,
    // The record's own ISO-8601 time, as the JSON lines carry it (pino-pretty would show local HH:MM:ss).
    translateTime: false,
    ignore: "pid,hostname,reqId,req,res,responseTime",
    messageFormat: (log: LogRecord, messageKey: string) => {
      const message = String(log[messageKey] ?? "");
      const { req, res, responseTime } = log;
      if (!req) return message;
      const took = typeof responseTime === "number" ? ` ${responseTime.toFixed(1)} ms` : "";
      return `${message} ${req.method ?? ""} ${req.path ?? ""} ${res?.statusCode ?? ""}${took}`;
    },
  });
}
