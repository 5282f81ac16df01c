/**
 * The stdio side of `connect`: newline-delimited JSON-RPC on stdin and stdout (the MCP stdio
 * transport, both eras). Lines that are not JSON, or not a JSON-RPC message, are answered as
 * JSON-RPC says (id null, -32700 / -32600); stdout carries nothing but JSON-RPC.
 */
import type { Readable, Writable } from "node:stream";

export type JsonRpcId = string | number;

export interface JsonRpcMessage {
  jsonrpc: "2.0";
  id?: JsonRpcId | null;
  method?: string;
  params?: Record<string, unknown>;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

/** JSON-RPC 2.0 codes. */
export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;
export const METHOD_NOT_FOUND = -32601;
export const INTERNAL_ERROR = -32603;
/** Implementation-defined server error: the relay's own failures. */
export const RELAY_ERROR = -32000;

export const isRequest = (m: JsonRpcMessage): m is JsonRpcMessage & { id: JsonRpcId; method: string } =>
  typeof m.method === "string" && m.id !== undefined && m.id !== null;
export const isNotification = (m: JsonRpcMessage): m is JsonRpcMessage & { method: string } =>
  typeof m.method === "string" && m.id === undefined;
export const isResponse = (m: JsonRpcMessage): boolean =>
  m.method === undefined && (m.result !== undefined || m.error !== undefined);

function isMessage(value: unknown): value is JsonRpcMessage {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const m = value as JsonRpcMessage;
  if (m.jsonrpc !== "2.0") return false;
  if (m.params !== undefined && (typeof m.params !== "object" || m.params === null)) return false;
  if (typeof m.method === "string")
    return m.id === undefined || typeof m.id === "string" || typeof m.id === "number";
  return (
    (typeof m.id === "string" || typeof m.id === "number") &&
    (m.result !== undefined || m.error !== undefined)
  );
}

/** A line longer than this is not a sane message; it is refused and dropped. */
const MAX_LINE = 64 * 1024 * 1024;

export class StdioChannel {
  onmessage?: (message: JsonRpcMessage) => void;
  private buffer = "";

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
  ) {}

  start(): void {
    this.input.setEncoding("utf8");
    this.input.on("data", (chunk: string) => {
      this.buffer += chunk;
      let newline = this.buffer.indexOf("\n");
      while (newline >= 0) {
        const line = this.buffer.slice(0, newline).replace(/\r$/, "");
        this.buffer = this.buffer.slice(newline + 1);
        if (line.trim()) this.receive(line);
        newline = this.buffer.indexOf("\n");
      }
      if (this.buffer.length > MAX_LINE) {
        this.buffer = "";
        this.refuse(INVALID_REQUEST, "Invalid Request");
      }
    });
  }

  send(message: JsonRpcMessage): void {
    if (this.output.writable) this.output.write(`${JSON.stringify(message)}\n`);
  }

  reply(id: JsonRpcId, result: unknown): void {
    this.send({ jsonrpc: "2.0", id, result });
  }

  replyError(id: JsonRpcId | null, error: { code: number; message: string; data?: unknown }): void {
    this.send({ jsonrpc: "2.0", id, error });
  }

  private refuse(code: number, message: string): void {
    this.replyError(null, { code, message });
  }

  private receive(line: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      this.refuse(PARSE_ERROR, "Parse error");
      return;
    }
    if (!isMessage(parsed)) {
      this.refuse(INVALID_REQUEST, "Invalid Request");
      return;
    }
    this.onmessage?.(parsed);
  }
}
