/**
 * The gateway's logger: pino, ISO-8601 times, secrets redacted; JSON lines for machines (a pipe,
 * a file, journald, a container runtime) and readable lines for a person at a terminal.
 *
 * pino-pretty is loaded only when lines are to be pretty: it is a few hundred milliseconds of
 * start-up a service under a supervisor should not pay, and JSON output never touches it.
 */
import type { FastifyServerOptions } from "fastify";
import pino from "pino";
import type { GatewayConfig } from "../config/schema.js";
import { isoTime } from "./log-time.js";

/**
 * What may appear in a log line about a request: never a query string (codes), never a header.
 * `req` is the request log's view (src/ops/request-log.ts), whose `ip` was decided once per
 * request and never reads the socket, which may be gone when a streamed answer ends.
 */
const requestSerializer = (req: { method: string; url: string; ip?: string }) => ({
  method: req.method,
  path: req.url.split("?")[0],
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
 * Where JSON lines go: stdout by default, written asynchronously (sonic-boom). A line is handed
 * to the kernel as soon as no earlier write is under way, so a quiet gateway's lines appear at
 * once; under load the lines that arrive during a write go out together in the next one
 * instead of one write(2) per request on the request's own time. pino flushes what is left
 * synchronously when the process exits, so no line is lost at shutdown.
 */
export function logDestination(dest: number | string = 1): LogLine {
  return pino.destination({ dest, sync: false });
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
    redact: ["req.headers.authorization", "req.headers.cookie", "res.headers['set-cookie']"],
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
