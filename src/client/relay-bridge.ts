/**
 * `connect` for a stdio client of the 2025 era (it opens with `initialize`): an SDK v2 `Client`
 * with version negotiation `auto` talks to the remote server in whichever era it speaks, under
 * the stdio client's own identity, capabilities and protocol version; every request of the
 * stdio client goes out through it, and its answers come back untouched.
 *
 * What the server asks of the client reaches the stdio client as ordinary server-to-client
 * requests in both eras: the Client's handlers forward them, whether they arrive as requests
 * on a 2025 session or as the embedded requests of a 2026-07-28 `input_required` result (the
 * Client fulfils those through the same handlers and retries the call). Progress notifications
 * keep the stdio client's progress token; a cancellation cancels the remote request; the change
 * notifications of a 2026-07-28 server (sent on a `subscriptions/listen` stream) arrive unasked,
 * as a 2025 client expects them.
 */
import {
  type CallToolRequest,
  Client,
  type ClientCapabilities,
  type Implementation,
  LOG_LEVEL_META_KEY,
  ProtocolError,
  type RequestOptions,
  type StandardSchemaV1,
  type StreamableHTTPClientTransport,
  SUPPORTED_PROTOCOL_VERSIONS,
} from "@modelcontextprotocol/client";
import { type Remote, remoteTransport, toJsonRpcError } from "./relay-remote.js";
import {
  INVALID_REQUEST,
  isNotification,
  isRequest,
  isResponse,
  type JsonRpcId,
  type JsonRpcMessage,
  RELAY_ERROR,
  type StdioChannel,
} from "./stdio-channel.js";

/** The result as the server sent it: the stdio client validates it, not the relay. */
const AS_SENT: StandardSchemaV1<unknown, unknown> = {
  "~standard": { version: 1, vendor: "mcp-gateway", validate: (value) => ({ value }) },
};

/** No relay-side timeout: the stdio client has its own, and cancels. */
const NO_TIMEOUT = 2_147_483_647;

/** The 2025-era versions the SDK speaks (2026-07-28 is chosen through `server/discover` only). */
const LEGACY_VERSIONS = SUPPORTED_PROTOCOL_VERSIONS.filter((v) => v < "2026");

/** Methods the server may ask of a client, and the capability each needs. */
const CLIENT_FEATURES = [
  ["elicitation/create", "elicitation"],
  ["sampling/createMessage", "sampling"],
  ["roots/list", "roots"],
] as const;

export class ClientBridge {
  private client?: Client;
  private transport?: StreamableHTTPClientTransport;
  private ready?: Promise<boolean>;
  /** Requests of the stdio client in flight, by its id. */
  private readonly inFlight = new Map<JsonRpcId, AbortController>();
  /** Requests to the stdio client awaiting its answer, by the relay's id. */
  private readonly asked = new Map<JsonRpcId, { resolve(r: unknown): void; reject(e: Error): void }>();
  private nextId = 1;
  /** `logging/setLevel` of the stdio client, sent along in `_meta` where the era has no such method. */
  private logLevel?: string;

  constructor(
    private readonly channel: StdioChannel,
    private readonly remote: Remote,
  ) {}

  handle(message: JsonRpcMessage): void {
    if (isResponse(message)) {
      this.answered(message);
      return;
    }
    if (isRequest(message) && message.method === "initialize") {
      if (this.client) {
        this.channel.replyError(message.id, { code: INVALID_REQUEST, message: "already initialized" });
        return;
      }
      this.ready = this.initialize(message.id, message.params ?? {});
      return;
    }
    if (!this.ready) {
      if (isRequest(message)) {
        this.channel.replyError(message.id, { code: INVALID_REQUEST, message: "send initialize first" });
      }
      return;
    }
    void this.ready.then((ok) => {
      if (ok) this.dispatch(message);
      else if (isRequest(message))
        this.channel.replyError(message.id, { code: INVALID_REQUEST, message: "not initialized" });
    });
  }

  async close(): Promise<void> {
    for (const controller of this.inFlight.values()) controller.abort("the stdio client went away");
    await this.transport?.terminateSession().catch(() => undefined);
    await this.client?.close().catch(() => undefined);
  }

  private async initialize(id: JsonRpcId, params: Record<string, unknown>): Promise<boolean> {
    const requested = typeof params.protocolVersion === "string" ? params.protocolVersion : undefined;
    const capabilities = (params.capabilities ?? {}) as ClientCapabilities;
    const clientInfo = (params.clientInfo ?? { name: "mcp-gateway connect", version: "1" }) as Implementation;
    const client = new Client(clientInfo, {
      capabilities,
      versionNegotiation: { mode: "auto" },
      // The legacy handshake offers the first 2025-era entry: the stdio client's own.
      ...(requested &&
        LEGACY_VERSIONS.includes(requested) && {
          supportedProtocolVersions: [
            requested,
            ...SUPPORTED_PROTOCOL_VERSIONS.filter((v) => v !== requested),
          ],
        }),
    });
    for (const [method, capability] of CLIENT_FEATURES) {
      if (!capabilities[capability]) continue;
      client.setRequestHandler(
        method,
        (request, ctx) =>
          this.ask(method, request.params as Record<string, unknown> | undefined, ctx.mcpReq.signal) as never,
      );
    }
    client.fallbackRequestHandler = async (request, ctx) =>
      (await this.ask(
        request.method,
        request.params as Record<string, unknown> | undefined,
        ctx.mcpReq.signal,
      )) as never;
    client.fallbackNotificationHandler = async (notification) => {
      this.channel.send({
        jsonrpc: "2.0",
        method: notification.method,
        ...(notification.params && { params: notification.params }),
      });
    };
    client.onerror = (err) => this.remote.log(`connect: ${err.message}`);
    try {
      await this.remote.stepUp.run(async () => {
        const transport = remoteTransport(this.remote);
        try {
          await client.connect(transport);
          this.transport = transport;
        } catch (err) {
          await transport.close().catch(() => undefined);
          throw err;
        }
      });
    } catch (err) {
      const error = toJsonRpcError(err);
      this.remote.log(`connect: ${error.message}`);
      this.channel.replyError(id, error);
      this.ready = undefined;
      return false;
    }
    this.client = client;
    const legacy = client.getProtocolEra() === "legacy";
    if (!legacy) this.listenForChanges(client);
    const negotiated = client.getNegotiatedProtocolVersion();
    // A 2025 server agreed on a version with the stdio client's own offer; for a 2026-07-28
    // server, the stdio client gets its own version back (it speaks 2025 on this side).
    const version = legacy
      ? negotiated
      : requested && LEGACY_VERSIONS.includes(requested)
        ? requested
        : LEGACY_VERSIONS[0];
    const instructions = client.getInstructions();
    this.channel.reply(id, {
      protocolVersion: version,
      capabilities: client.getServerCapabilities() ?? {},
      serverInfo: client.getServerVersion() ?? { name: "unknown", version: "0" },
      ...(instructions && { instructions }),
    });
    return true;
  }

  /**
   * A 2026-07-28 server sends change notifications only on a `subscriptions/listen` stream;
   * a 2025 client expects them unasked. Open one for what the server says can change; what
   * arrives on it goes to the stdio client like any notification.
   */
  private listenForChanges(client: Client): void {
    const caps = client.getServerCapabilities() ?? {};
    const filter = {
      ...(caps.tools?.listChanged && { toolsListChanged: true }),
      ...(caps.prompts?.listChanged && { promptsListChanged: true }),
      ...(caps.resources?.listChanged && { resourcesListChanged: true }),
    };
    if (Object.keys(filter).length === 0) return;
    client.listen(filter, { timeout: NO_TIMEOUT }).catch((err: Error) => {
      this.remote.log(`connect: no change notifications from the server (${err.message})`);
    });
  }

  private dispatch(message: JsonRpcMessage): void {
    const client = this.client;
    if (!client) return;
    if (isNotification(message)) {
      if (message.method === "notifications/initialized") return; // The Client sent its own.
      if (message.method === "notifications/cancelled") {
        const requestId = message.params?.requestId as JsonRpcId | undefined;
        if (requestId !== undefined)
          this.inFlight.get(requestId)?.abort(message.params?.reason ?? "cancelled");
        return;
      }
      // Notifications the remote era has no place for (roots/list_changed in 2026-07-28) are dropped.
      void client.notification({ method: message.method, params: message.params }).catch(() => undefined);
      return;
    }
    if (!isRequest(message)) return;
    const { id, method } = message;
    if (method === "ping") {
      this.channel.reply(id, {});
      return;
    }
    if (method === "logging/setLevel" && client.getProtocolEra() !== "legacy") {
      this.logLevel = String(message.params?.level ?? "");
      this.channel.reply(id, {});
      return;
    }
    void this.forward(client, id, method, message.params);
  }

  private async forward(client: Client, id: JsonRpcId, method: string, given?: Record<string, unknown>) {
    const controller = new AbortController();
    this.inFlight.set(id, controller);
    // The progress token goes back to the stdio client as it gave it; the SDK numbers its own.
    const { _meta: givenMeta, ...rest } = given ?? {};
    const { progressToken, ...meta } = (givenMeta ?? {}) as Record<string, unknown>;
    if (this.logLevel) meta[LOG_LEVEL_META_KEY] = this.logLevel;
    const params: Record<string, unknown> | undefined =
      Object.keys(meta).length > 0 ? { ...rest, _meta: meta } : given ? rest : undefined;
    const options: RequestOptions = {
      signal: controller.signal,
      timeout: NO_TIMEOUT,
      ...(progressToken !== undefined && {
        resetTimeoutOnProgress: true,
        onprogress: (progress) =>
          this.channel.send({
            jsonrpc: "2.0",
            method: "notifications/progress",
            params: { ...progress, progressToken },
          }),
      }),
    };
    try {
      const result = await this.remote.stepUp.run(() =>
        // A 2026-07-28 tool call goes through callTool, which mirrors the arguments a tool
        // declares as headers (SEP-2243) and recovers when the server says they differ.
        method === "tools/call" && client.getProtocolEra() === "modern"
          ? client.callTool(params as CallToolRequest["params"], options)
          : client.request({ method, params }, AS_SENT, options),
      );
      // The SDK dispatches notifications a few microtasks later than responses: let those that
      // came before this answer on the wire (progress, logging) reach stdout before it does.
      await new Promise((resolve) => setImmediate(resolve));
      if (!controller.signal.aborted) this.channel.reply(id, result);
    } catch (err) {
      // A request the stdio client cancelled gets no answer (MCP cancellation).
      if (controller.signal.aborted) return;
      const error = toJsonRpcError(err);
      if (error.code === RELAY_ERROR) this.remote.log(`connect: ${error.message}`);
      this.channel.replyError(id, error);
    } finally {
      this.inFlight.delete(id);
    }
  }

  /** Asks the stdio client (a server-to-client request, or an embedded input request). */
  private ask(
    method: string,
    params: Record<string, unknown> | undefined,
    signal: AbortSignal,
  ): Promise<unknown> {
    const id = `mcpgw-${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        if (!this.asked.delete(id)) return;
        this.channel.send({
          jsonrpc: "2.0",
          method: "notifications/cancelled",
          params: { requestId: id, reason: String(signal.reason ?? "cancelled") },
        });
        reject(
          signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason ?? "cancelled")),
        );
      };
      this.asked.set(id, {
        resolve: (r) => {
          signal.removeEventListener("abort", onAbort);
          resolve(r);
        },
        reject: (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        },
      });
      signal.addEventListener("abort", onAbort, { once: true });
      this.channel.send({ jsonrpc: "2.0", id, method, ...(params && { params }) });
    });
  }

  private answered(message: JsonRpcMessage): void {
    const id = message.id as JsonRpcId;
    const waiting = this.asked.get(id);
    if (!waiting) return;
    this.asked.delete(id);
    if (message.error)
      waiting.reject(new ProtocolError(message.error.code, message.error.message, message.error.data));
    else waiting.resolve(message.result);
  }
}
