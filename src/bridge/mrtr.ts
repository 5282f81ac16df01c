/**
 * Multi-round-trip requests (2026-07-28) for 2025 children. A 2025 child asks its client
 * something (sampling, elicitation, roots) in the middle of a request; a stateless client cannot
 * be asked, so the bridge answers the HTTP request with an `input_required` result carrying the
 * child's request and an unguessable `requestState`, keeps the child's request waiting, and when
 * the client retries with `inputResponses` and that state, hands the answers to the child and
 * puts the retry in the original request's place.
 */
import { randomBytes } from "node:crypto";
import { type Exchange, HeldReply } from "./exchange.js";
import { ErrorCode, errorResponse, type JsonRpcId, type JsonRpcMessage } from "./jsonrpc.js";
import type { Pending, Upstream } from "./upstream.js";

/** The client capability each kind of child request needs. */
const NEEDS: Record<string, string> = {
  "sampling/createMessage": "sampling",
  "elicitation/create": "elicitation",
  "roots/list": "roots",
};

/** A request waiting between rounds for the client's retry. */
interface Parked {
  owner: string;
  method: string;
  upstream: Upstream;
  entry: Pending;
  held: HeldReply;
  /** Input key -> the child's request it stands for, not yet answered. */
  asked: Map<string, JsonRpcMessage>;
  timer: NodeJS.Timeout;
}

export class MultiRoundTrips {
  private readonly parked = new Map<string, Parked>();
  private readonly byEntry = new WeakMap<Pending, string>();
  private nextKey = 1;

  /** @param waitMs how long a request waits for the client's next round before it is cancelled */
  constructor(private readonly waitMs: number) {}

  get size(): number {
    return this.parked.size;
  }

  /**
   * The child asked something while `entry` runs for a client with `capabilities`: refuse what
   * the client cannot answer, else answer the client `input_required` (or, between rounds, add
   * the question to the next one).
   */
  ask(
    upstream: Upstream,
    entry: Pending,
    owner: string,
    method: string,
    capabilities: Record<string, unknown>,
    request: JsonRpcMessage,
  ): void {
    const needs = NEEDS[request.method as string];
    if (!needs) {
      upstream.reply(errorResponse(request.id as JsonRpcId, ErrorCode.MethodNotFound, "Method not found"));
      return;
    }
    if (!capabilities[needs]) {
      // The request cannot be served for this client: it learns which capability it lacks, and
      // the child gets a refusal for its question and a cancellation for the request.
      const reply = entry.reply;
      upstream.reply(
        errorResponse(
          request.id as JsonRpcId,
          ErrorCode.MethodNotFound,
          `the client does not support ${request.method}`,
        ),
      );
      upstream.redirect(entry, new HeldReply(), entry.clientId, false);
      upstream.cancel(entry, `the client did not declare the ${needs} capability`);
      reply.respond(
        errorResponse(
          entry.clientId,
          ErrorCode.MissingRequiredClientCapability,
          `Missing required client capability: ${needs}`,
          { requiredCapabilities: { [needs]: {} } },
        ),
      );
      return;
    }
    const waiting = this.byEntry.get(entry);
    const parked = waiting ? this.parked.get(waiting) : undefined;
    if (parked) {
      parked.asked.set(this.key(request), request);
      return;
    }
    const token = randomBytes(24).toString("base64url");
    const held = new HeldReply();
    const reply = entry.reply;
    const timer = setTimeout(() => this.expire(token), this.waitMs);
    timer.unref();
    const asked = new Map([[this.key(request), request]]);
    this.parked.set(token, { owner, method, upstream, entry, held, asked, timer });
    this.byEntry.set(entry, token);
    upstream.redirect(entry, held, entry.clientId, false);
    reply.respond(this.inputRequired(entry.clientId, asked, token));
  }

  /**
   * A retry naming `token`: false if it is not a waiting request of this owner and method (the
   * caller answers -32602); otherwise it is answered or takes the original request's place.
   */
  resume(token: string, owner: string, msg: JsonRpcMessage, exchange: Exchange): boolean {
    const parked = this.parked.get(token);
    if (!parked || parked.owner !== owner || parked.method !== msg.method) return false;
    const id = msg.id as JsonRpcId;
    const responses = ((msg.params as { inputResponses?: unknown } | undefined)?.inputResponses ??
      {}) as Record<string, unknown>;
    for (const [key, request] of parked.asked) {
      if (!(key in responses)) continue;
      parked.upstream.reply({ jsonrpc: "2.0", id: request.id, result: responses[key] });
      parked.asked.delete(key);
    }
    if (parked.held.response) {
      // The child finished while the client was away.
      this.drop(token, parked);
      exchange.respond({ ...parked.held.response, id });
      return true;
    }
    if (!parked.upstream.isPending(parked.entry)) {
      this.drop(token, parked);
      exchange.respond(errorResponse(id, ErrorCode.ServerError, "the request ended on the server"));
      return true;
    }
    if (parked.asked.size > 0) {
      // Questions still open (unanswered, or asked between rounds): another round.
      parked.timer.refresh();
      exchange.respond(this.inputRequired(id, parked.asked, token));
      return true;
    }
    this.drop(token, parked);
    parked.upstream.redirect(parked.entry, exchange, id);
    return true;
  }

  /** Cancel every waiting request (the bridge closes). */
  clear(): void {
    for (const [token, parked] of this.parked) this.expire(token, parked);
  }

  private key(request: JsonRpcMessage): string {
    const kind = (request.method as string).split("/")[0];
    return `${kind}-${this.nextKey++}`;
  }

  private inputRequired(id: JsonRpcId, asked: Map<string, JsonRpcMessage>, token: string): JsonRpcMessage {
    const inputRequests: Record<string, unknown> = {};
    for (const [key, request] of asked)
      inputRequests[key] = { method: request.method, params: request.params };
    return {
      jsonrpc: "2.0",
      id,
      result: { resultType: "input_required", inputRequests, requestState: token },
    };
  }

  private drop(token: string, parked: Parked): void {
    clearTimeout(parked.timer);
    this.parked.delete(token);
    this.byEntry.delete(parked.entry);
  }

  /** The client never came back: refuse the child's questions and cancel the request. */
  private expire(token: string, parked = this.parked.get(token)): void {
    if (!parked) return;
    this.drop(token, parked);
    for (const request of parked.asked.values()) {
      parked.upstream.reply(
        errorResponse(request.id as JsonRpcId, ErrorCode.InternalError, "the client did not answer in time"),
      );
    }
    parked.upstream.cancel(parked.entry, "the client did not come back with its input");
  }
}
