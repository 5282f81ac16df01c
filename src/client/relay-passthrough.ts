/**
 * `connect` for a stdio client of the 2026-07-28 era (it opens with `server/discover`, or a
 * request carrying the per-request `_meta` envelope): both ends speak the same stateless
 * protocol, so every message is relayed untouched through the SDK v2 transport, which derives
 * the `MCP-Protocol-Version` and `Mcp-Method` headers from each message. `input_required`
 * results and their retries pass through as they are: the stdio client fulfils them.
 *
 * When the remote server turns out to speak only the 2025 protocol, the `server/discover` is
 * answered "method not found", which a 2026 client reads as "fall back to `initialize`"; the
 * relay then hands over to the ClientBridge.
 */
import type { StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { type Remote, remoteTransport, toJsonRpcError } from "./relay-remote.js";
import {
  isNotification,
  isRequest,
  isResponse,
  type JsonRpcId,
  type JsonRpcMessage,
  METHOD_NOT_FOUND,
  RELAY_ERROR,
  type StdioChannel,
} from "./stdio-channel.js";

const FIRST_MODERN_VERSION = "2026-07-28";

/** Whether a `server/discover` answer offers a protocol version of the 2026 era. */
function offersModern(message: JsonRpcMessage): boolean {
  const versions = (message.result as { supportedVersions?: unknown } | undefined)?.supportedVersions;
  return Array.isArray(versions) && versions.some((v) => typeof v === "string" && v >= FIRST_MODERN_VERSION);
}

export class Passthrough {
  private readonly transport: StreamableHTTPClientTransport;
  private started?: Promise<void>;
  /** The `server/discover` whose answer tells the remote era; undefined once known. */
  private probeId?: JsonRpcId;
  private legacy = false;
  /** Per-request aborts: in 2026-07-28 over HTTP, closing a request's stream cancels it. */
  private readonly streams = new Map<JsonRpcId, AbortController>();

  constructor(
    private readonly channel: StdioChannel,
    private readonly remote: Remote,
    /** Called when the remote speaks only the 2025 protocol. */
    private readonly onLegacy: () => void,
  ) {
    this.transport = remoteTransport(remote);
    this.transport.onmessage = (message) => this.fromRemote(message as JsonRpcMessage);
    this.transport.onerror = (err) => remote.log(`connect: ${err.message}`);
  }

  handle(message: JsonRpcMessage): void {
    if (this.legacy) return;
    if (
      this.probeId === undefined &&
      !this.started &&
      isRequest(message) &&
      message.method === "server/discover"
    ) {
      this.probeId = message.id;
    }
    this.started ??= this.transport.start();
    void this.started.then(() => this.send(message));
  }

  async close(): Promise<void> {
    for (const controller of this.streams.values()) controller.abort();
    await this.transport.close().catch(() => undefined);
  }

  private async send(message: JsonRpcMessage): Promise<void> {
    if (isNotification(message) && message.method === "notifications/cancelled") {
      this.streams.get(message.params?.requestId as JsonRpcId)?.abort();
    }
    const controller = isRequest(message) ? new AbortController() : undefined;
    if (controller && isRequest(message)) this.streams.set(message.id, controller);
    try {
      await this.remote.stepUp.run(() =>
        this.transport.send(message as never, controller ? { requestSignal: controller.signal } : undefined),
      );
    } catch (err) {
      if (!isRequest(message) || controller?.signal.aborted) return;
      if (message.id === this.probeId) {
        this.fallBack(message.id);
        return;
      }
      const error = toJsonRpcError(err);
      if (error.code === RELAY_ERROR) this.remote.log(`connect: ${error.message}`);
      this.channel.replyError(message.id, error);
      this.streams.delete(message.id);
    }
  }

  private fromRemote(message: JsonRpcMessage): void {
    if (isResponse(message) && message.id !== undefined && message.id !== null) {
      this.streams.delete(message.id);
      if (message.id === this.probeId) {
        this.probeId = undefined;
        if (!offersModern(message)) {
          this.fallBack(message.id);
          return;
        }
      }
    }
    this.channel.send(message);
  }

  /** The remote speaks only 2025: tell the stdio client so, and let the bridge take over. */
  private fallBack(id: JsonRpcId): void {
    this.probeId = undefined;
    this.legacy = true;
    this.channel.replyError(id, {
      code: METHOD_NOT_FOUND,
      message: "Method not found: the remote MCP server speaks only the 2025 protocol (use initialize)",
    });
    void this.close();
    this.onLegacy();
  }
}
