/**
 * `connect`: a stdio MCP server relaying to a remote MCP server with the cached login, for MCP
 * clients that only speak stdio. The first message says which era the stdio client speaks:
 *
 * - `initialize` (2025): the ClientBridge, an SDK v2 Client negotiating `auto` with the remote,
 *   so a 2025 desktop app reaches 2025 and 2026-07-28 servers alike;
 * - `server/discover`, or a request with the 2026-07-28 `_meta` envelope: the Passthrough,
 *   which relays untouched to a 2026 server, and answers so that the client falls back to
 *   `initialize` (and the bridge) when the remote speaks only 2025.
 *
 * Tokens are refreshed before they expire and on a 401; a 403 `insufficient_scope` asks the
 * person for the wider grant (step-up.ts).
 */
import type { Readable, Writable } from "node:stream";
import { PROTOCOL_VERSION_META_KEY } from "@modelcontextprotocol/client";
import { freshTokens } from "./access-token.js";
import { type CredentialStore, serverKey } from "./credentials.js";
import { ClientBridge } from "./relay-bridge.js";
import { Passthrough } from "./relay-passthrough.js";
import type { Remote } from "./relay-remote.js";
import { INVALID_REQUEST, isRequest, type JsonRpcMessage, StdioChannel } from "./stdio-channel.js";
import { StepUp } from "./step-up.js";

export interface RelayOptions {
  store: CredentialStore;
  serverUrl: string;
  stdin?: Readable;
  stdout?: Writable;
  /** Diagnostics (stderr): stdout carries JSON-RPC only. */
  log(message: string): void;
  /** Open a browser for a step-up authorization (the URL is printed on stderr either way). */
  browser?: boolean;
  /** How long a step-up authorization waits for the person. */
  loginTimeoutMs?: number;
}

export interface Relay {
  /** Resolves when stdin has ended and the remote side is closed. */
  closed: Promise<void>;
  /** Ends the remote session and stops relaying. */
  close(): Promise<void>;
}

type Engine = ClientBridge | Passthrough;

/** Whether a first message comes from a 2026-07-28 client. */
function speaksModern(message: JsonRpcMessage): boolean {
  if (message.method === "server/discover") return true;
  const meta = message.params?._meta as Record<string, unknown> | undefined;
  return typeof meta?.[PROTOCOL_VERSION_META_KEY] === "string";
}

/**
 * Starts relaying. Throws `LoginRequiredError` before reading any message when there is no
 * usable login, so the caller can exit with a clear message.
 */
export async function startRelay(options: RelayOptions): Promise<Relay> {
  const url = serverKey(options.serverUrl);
  const { store, log } = options;
  await freshTokens(store, url);

  const stdin = options.stdin ?? process.stdin;
  const channel = new StdioChannel(stdin, options.stdout ?? process.stdout);
  const remote: Remote = {
    serverUrl: url,
    store,
    log,
    stepUp: new StepUp({
      store,
      serverUrl: url,
      log,
      browser: options.browser ?? true,
      timeoutMs: options.loginTimeoutMs ?? 120_000,
    }),
  };
  let engine: Engine | undefined;
  const retired: Engine[] = [];

  channel.onmessage = (message) => {
    if (engine) {
      engine.handle(message);
      return;
    }
    if (isRequest(message) && message.method === "initialize") {
      engine = new ClientBridge(channel, remote);
    } else if (speaksModern(message)) {
      const passthrough = new Passthrough(channel, remote, () => {
        if (engine === passthrough) engine = undefined;
        retired.push(passthrough);
      });
      engine = passthrough;
    } else {
      if (isRequest(message)) {
        channel.replyError(message.id, {
          code: INVALID_REQUEST,
          message: "send initialize (MCP 2025) or server/discover (MCP 2026-07-28) first",
        });
      }
      return;
    }
    engine.handle(message);
  };

  let closing: Promise<void> | undefined;
  let ended!: () => void;
  const closed = new Promise<void>((resolve) => {
    ended = resolve;
  });
  const close = () => {
    closing ??= (async () => {
      await engine?.close();
      for (const old of retired) await old.close();
      ended();
    })();
    return closing;
  };
  stdin.once("end", () => void close());
  stdin.once("close", () => void close());
  channel.start();
  return { closed, close };
}
