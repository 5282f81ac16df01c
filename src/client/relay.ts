/**
 * `connect`: a stdio MCP server that relays every JSON-RPC message, untouched, both ways to a
 * remote Streamable HTTP endpoint with the cached token, for MCP clients that only speak stdio.
 * Server-to-client requests and notifications come back over the transport's streams; the
 * client's answers go out as POSTs like any other message. Tokens are refreshed before they
 * expire, and on a 401 by the SDK transport through the same provider.
 */
import type { Readable, Writable } from "node:stream";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import {
  isInitializedNotification,
  isJSONRPCErrorResponse,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
} from "@modelcontextprotocol/sdk/types.js";
import { freshTokens } from "./access-token.js";
import { type CredentialStore, serverKey } from "./credentials.js";
import { CachedOAuthProvider } from "./provider.js";

/** JSON-RPC 2.0 codes: parse error, invalid request, and the implementation-defined server error. */
const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
const RELAY_ERROR = -32000;

export interface RelayOptions {
  store: CredentialStore;
  serverUrl: string;
  stdin?: Readable;
  stdout?: Writable;
  /** Diagnostics (stderr): stdout carries JSON-RPC only. */
  log(message: string): void;
}

export interface Relay {
  /** Resolves when stdin has ended and the remote session is closed. */
  closed: Promise<void>;
  /** Ends the remote session and stops relaying. */
  close(): Promise<void>;
}

/**
 * Starts relaying. Throws `LoginRequiredError` before reading any message when there is no
 * usable login, so the caller can exit with a clear message.
 */
export async function startRelay(options: RelayOptions): Promise<Relay> {
  const url = serverKey(options.serverUrl);
  const { store, log } = options;
  await freshTokens(store, url);

  const http = new StreamableHTTPClientTransport(new URL(url), {
    authProvider: new CachedOAuthProvider(store, url),
  });
  const stdio = new StdioServerTransport(options.stdin, options.stdout);
  const initializeIds = new Set<string | number>();

  const reply = (message: unknown) =>
    stdio
      .send(message as JSONRPCMessage)
      .catch((err: Error) => log(`cannot write to stdout: ${err.message}`));

  // Like the SDK client, let `notifications/initialized` be accepted (and the server's event
  // stream be asked for) before anything that follows it goes out.
  let gate: Promise<unknown> = Promise.resolve();
  stdio.onmessage = (message) => {
    if (isJSONRPCRequest(message) && message.method === "initialize") initializeIds.add(message.id);
    const sent = forward(message, gate);
    if (isInitializedNotification(message)) gate = sent;
  };
  const forward = async (message: JSONRPCMessage, after: Promise<unknown>) => {
    try {
      await after;
      await freshTokens(store, url);
      await http.send(message);
    } catch (err) {
      const reason = (err as Error).message;
      log(`connect: ${reason}`);
      if (isJSONRPCRequest(message)) {
        await reply({ jsonrpc: "2.0", id: message.id, error: { code: RELAY_ERROR, message: reason } });
      }
    }
  };
  stdio.onerror = (err) => {
    // The SDK's line reader reports unparsable lines here; answer them as JSON-RPC says (id null).
    if (err instanceof SyntaxError) {
      void reply({ jsonrpc: "2.0", id: null, error: { code: PARSE_ERROR, message: "Parse error" } });
    } else if (err.name === "ZodError") {
      void reply({ jsonrpc: "2.0", id: null, error: { code: INVALID_REQUEST, message: "Invalid Request" } });
    } else {
      log(`connect: stdio: ${err.message}`);
    }
  };

  http.onmessage = (message) => {
    const id = isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message) ? message.id : undefined;
    if (id !== undefined && initializeIds.delete(id)) {
      // The transport sends MCP-Protocol-Version on later requests once told which was agreed.
      const version = isJSONRPCResultResponse(message) ? message.result.protocolVersion : undefined;
      if (typeof version === "string") http.setProtocolVersion(version);
    }
    void reply(message);
  };
  http.onerror = (err) => log(`connect: ${err.message}`);

  let closing: Promise<void> | undefined;
  let ended!: () => void;
  const closed = new Promise<void>((resolve) => {
    ended = resolve;
  });
  const close = () => {
    closing ??= (async () => {
      await http.terminateSession().catch(() => undefined);
      await http.close().catch(() => undefined);
      await stdio.close().catch(() => undefined);
      ended();
    })();
    return closing;
  };
  const stdin = options.stdin ?? process.stdin;
  stdin.once("end", () => void close());
  stdin.once("close", () => void close());

  await http.start();
  await stdio.start();
  return { closed, close };
}
