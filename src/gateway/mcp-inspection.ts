/**
 * The requests the gateway looks into before it forwards them, as a short list of steps: read
 * the body (bounded), check the 2026-07-28 standard headers against it, then, on a service
 * with a per-tool policy, decide tools/call (refuse, ask for a step-up, or forward and audit)
 * and filter tools/list answers. Which requests: every POST to a service with `tools:`, and a
 * POST whose MCP-Protocol-Version header names 2026-07-28 or later. Everything else takes the
 * plain path, where the body is streamed unread.
 */
import type { IncomingHttpHeaders } from "node:http";
import { Transform } from "node:stream";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { GatewayConfig } from "../config/schema.js";
import type { Audit } from "../ops/audit.js";
import type { RequestMetrics } from "../ops/request-metrics.js";
import type { AccessTokenClaims } from "../tokens/claims.js";
import { bearerChallenge } from "./challenge.js";
import { type JsonRpcId, sendJsonRpcError, sendJsonRpcErrorFor } from "./errors.js";
import { checkStandardHeaders, headerDeclaresModern, type JsonRpcMessage, requestId } from "./mcp-headers.js";
import type { ForwardPlan } from "./proxy.js";
import { parseJson, readBody } from "./request-body.js";
import type { ServiceRoute, ServiceRouter } from "./routing.js";
import { answerKind, toolCallObserver, toolListFilter } from "./tool-answers.js";
import { type ToolCaller, ToolPolicy } from "./tool-policy.js";

/** JSON-RPC codes the gateway answers with itself. */
const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
/** What MCP answers for a tool that cannot be called (SEP: unknown tool is invalid params). */
const INVALID_PARAMS = -32602;

/** Asked of the upstream for answers the gateway reads: a compressed one could not be. */
const READABLE_ANSWER = { "accept-encoding": "identity" };

export interface InspectionDeps {
  config: GatewayConfig;
  router: ServiceRouter;
  audit: Audit;
  metrics: RequestMetrics;
}

/** Who is calling and from where, as the token check established it. */
export interface InspectedCaller {
  claims: AccessTokenClaims;
  ip?: string;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A compressed answer cannot be filtered: fail the stream rather than pass it unread. */
function encoded(headers: Record<string, string | string[] | undefined>): boolean {
  const value = headers["content-encoding"];
  return value !== undefined && String(value).trim().toLowerCase() !== "identity";
}

/** Fails the answer: what the gateway must filter but cannot read never reaches the client. */
function unreadable(): Transform {
  return new Transform({
    transform: (_chunk, _enc, done) =>
      done(new Error("the upstream compressed an answer the gateway must filter")),
  });
}

const scopeSets = new WeakMap<AccessTokenClaims, Set<string>>();

/** The token's scopes, split once per verified token (claims objects are cached per token). */
function scopesOf(claims: AccessTokenClaims): Set<string> {
  let set = scopeSets.get(claims);
  if (!set) {
    set = new Set((claims.scope ?? "").split(" ").filter(Boolean));
    scopeSets.set(claims, set);
  }
  return set;
}

export class McpInspector {
  private readonly policies = new Map<string, ToolPolicy>();
  private readonly maxBody: number;

  constructor(private readonly deps: InspectionDeps) {
    this.maxBody = deps.config.gateway.max_body;
    for (const [name, service] of Object.entries(deps.config.services)) {
      const policy = ToolPolicy.of(name, service);
      if (policy) this.policies.set(name, policy);
    }
  }

  /** Whether the request must be looked into; false (the plain path) costs one header look-up. */
  wants(req: { method?: string; headers: IncomingHttpHeaders }, route: ServiceRoute): boolean {
    if (this.policies.has(route.name)) return req.method !== "DELETE";
    return req.method === "POST" && headerDeclaresModern(req.headers);
  }

  /**
   * Looks into the request: returns how to forward it, or undefined when it has been answered
   * here (refused, or the client left while its body was read).
   */
  async inspect(
    req: FastifyRequest,
    reply: FastifyReply,
    route: ServiceRoute,
    caller: InspectedCaller,
  ): Promise<ForwardPlan | undefined> {
    const policy = this.policies.get(route.name);
    const who: ToolCaller = { claims: caller.claims, scopes: scopesOf(caller.claims) };
    // A GET stream has no body, but a resumed stream may replay a tools/list answer.
    if (req.method !== "POST") return policy ? this.listing(policy, who) : {};

    const read = await readBody(req.raw, this.maxBody);
    if (!read.ok) {
      if (read.reason === "too-large") {
        reply.header("connection", "close");
        sendJsonRpcError(reply, 413, `The request body is larger than ${this.maxBody} bytes`);
      } else if (read.reason === "encoded") {
        sendJsonRpcError(reply, 415, "A compressed request body cannot be checked; send it uncompressed");
      } else {
        sendJsonRpcError(reply, 400, "The request body ended early");
      }
      return undefined;
    }
    const body = read.bytes;
    const parsed = parseJson(body);
    if (Array.isArray(parsed)) return policy ? this.batch(reply, policy, who, parsed, body) : { body };
    if (!isObject(parsed)) {
      if (!policy) return { body }; // the upstream answers what it cannot parse itself
      sendJsonRpcErrorFor(reply, 400, null, {
        code: PARSE_ERROR,
        message: "The request body is not a JSON-RPC message",
      });
      return undefined;
    }
    const message = parsed as JsonRpcMessage;
    const mismatch = checkStandardHeaders(req.headers, message);
    if (mismatch) {
      sendJsonRpcErrorFor(reply, 400, requestId(message), mismatch);
      return undefined;
    }
    if (!policy) return { body };
    if (message.method === "tools/list") return { body, ...this.listing(policy, who) };
    if (message.method === "tools/call") return this.call(reply, route, policy, who, caller, message, body);
    return { body };
  }

  /** A plan whose answer loses the tools the caller may not call. */
  private listing(policy: ToolPolicy, who: ToolCaller): ForwardPlan {
    const keep = (tool: string) => policy.lists(tool, who);
    return {
      headers: READABLE_ANSWER,
      answer: (_status, headers) => {
        const kind = answerKind(String(headers["content-type"] ?? ""));
        if (!kind) return undefined;
        return encoded(headers) ? unreadable() : toolListFilter(kind, keep);
      },
    };
  }

  /**
   * A 2025-03-26 batch: tools/list in it is filtered like any answer; a tools/call is refused,
   * since one call's refusal cannot be told apart in the batch's single answer.
   */
  private batch(
    reply: FastifyReply,
    policy: ToolPolicy,
    who: ToolCaller,
    messages: unknown[],
    body: Buffer,
  ): ForwardPlan | undefined {
    if (messages.some((m) => isObject(m) && m.method === "tools/call")) {
      sendJsonRpcErrorFor(reply, 400, null, {
        code: INVALID_REQUEST,
        message: "tools/call cannot be sent in a batch to a service with a per-tool policy",
      });
      return undefined;
    }
    return { body, ...this.listing(policy, who) };
  }

  private call(
    reply: FastifyReply,
    route: ServiceRoute,
    policy: ToolPolicy,
    who: ToolCaller,
    caller: InspectedCaller,
    message: JsonRpcMessage,
    body: Buffer,
  ): ForwardPlan | undefined {
    const params = isObject(message.params) ? message.params : {};
    const tool = params.name;
    // No tool named: nothing to decide; the upstream answers the invalid request.
    if (typeof tool !== "string") return { body };
    const id: JsonRpcId = requestId(message);
    const decision = policy.decide(tool, who);
    if (!decision.allowed) {
      if (decision.stepUp) {
        const description = `The tool ${tool} of the service ${route.name} needs the scope ${decision.missing.join(" ")}`;
        sendJsonRpcErrorFor(
          reply,
          403,
          id,
          { code: INVALID_PARAMS, message: description },
          {
            "www-authenticate": bearerChallenge({
              resourceMetadata: this.deps.router.metadataUrl(route),
              scopes: decision.needed,
              error: "insufficient_scope",
              description,
            }),
          },
        );
        this.record(route, tool, caller, "step_up", 403, reply.elapsedTime);
      } else {
        sendJsonRpcErrorFor(reply, 200, id, { code: INVALID_PARAMS, message: decision.reason });
        this.record(route, tool, caller, "denied", 200, reply.elapsedTime);
      }
      return undefined;
    }
    let outcome: string | undefined;
    const res = reply.raw;
    res.once("close", () => {
      const status = res.statusCode;
      const ended = outcome ?? (status >= 400 ? "error" : "unknown");
      this.record(route, tool, caller, ended, status, reply.elapsedTime);
    });
    return {
      body,
      headers: READABLE_ANSWER,
      answer: (_status, headers) => {
        const kind = answerKind(String(headers["content-type"] ?? ""));
        if (!kind || encoded(headers)) return undefined;
        return toolCallObserver(kind, message.id, (seen) => {
          outcome = seen;
        });
      },
    };
  }

  /** The one audit event and the metrics of a tool call. */
  private record(
    route: ServiceRoute,
    tool: string,
    caller: InspectedCaller,
    outcome: string,
    status: number,
    elapsedMs: number,
  ): void {
    const { claims } = caller;
    this.deps.metrics.recordTool(route.name, tool, outcome, elapsedMs / 1000);
    this.deps.audit.emit({
      type: "tool.called",
      service: route.name,
      tool,
      outcome,
      user: claims.preferred_username ?? claims.sub,
      client_id: claims.client_id,
      status,
      duration_ms: Math.round(elapsedMs * 10) / 10,
      ip: caller.ip,
    });
  }
}
