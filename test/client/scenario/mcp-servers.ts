/**
 * Real MCP servers of both protocol eras, built with the SDK v2 server package
 * (`@modelcontextprotocol/server` 2.4), as fetch handlers the scenario servers mount behind
 * their bearer check:
 *
 * - `modernHandler()`: MCP 2026-07-28 only, stateless: `createMcpHandler(factory, { legacy:
 *   'reject' })` builds a fresh server per HTTP request; an `initialize` is refused with the
 *   unsupported-protocol-version error. Client input is asked for with `input_required`
 *   results (multi-round-trip), never with a server-to-client request.
 * - `legacyHandler()`: MCP 2025-11-25 with sessions (`Mcp-Session-Id`): one
 *   `WebStandardStreamableHTTPServerTransport` per session; client input is asked for with
 *   real server-to-client requests on the tool call's response stream.
 *
 * Both serve the same tools:
 *   echo {text}     returns the text
 *   ask             asks the client for a name (elicitation), returns "hello NAME"
 *   roots           asks the client for its roots, returns them as JSON
 *   progress {n}    reports n progress steps on the call's progress token, returns "done"
 *   whoami          returns the MCP-Protocol-Version header the call arrived with
 */
import { randomUUID } from "node:crypto";
import {
  acceptedContent,
  createMcpHandler,
  inputRequired,
  inputResponse,
  McpServer,
  WebStandardStreamableHTTPServerTransport,
} from "@modelcontextprotocol/server";
import { z } from "zod";
import type { FetchHandler } from "./web-server.js";

const NAME_SCHEMA = { type: "object" as const, properties: { name: { type: "string" as const } } };
const text = (value: string) => ({ content: [{ type: "text" as const, text: value }] });

function modernServer(request?: Request): McpServer {
  const mcp = new McpServer({ name: "modern-upstream", version: "2.0.0" });
  mcp.registerTool("echo", { inputSchema: z.object({ text: z.string() }) }, async ({ text: t }) => text(t));
  mcp.registerTool("whoami", {}, async () =>
    text(request?.headers.get("mcp-protocol-version") ?? "(no MCP-Protocol-Version header)"),
  );
  mcp.registerTool("ask", {}, async (ctx) => {
    const answer = acceptedContent<{ name?: string }>(ctx.mcpReq.inputResponses, "name");
    if (!answer?.name) {
      return inputRequired({
        inputRequests: {
          name: inputRequired.elicit({ message: "What is your name?", requestedSchema: NAME_SCHEMA }),
        },
      });
    }
    return text(`hello ${answer.name}`);
  });
  mcp.registerTool("roots", {}, async (ctx) => {
    const view = inputResponse(ctx.mcpReq.inputResponses, "roots");
    if (view.kind !== "roots") return inputRequired({ inputRequests: { roots: inputRequired.listRoots() } });
    return text(JSON.stringify(view.roots));
  });
  registerProgress(mcp);
  return mcp;
}

/** `progress`: n progress notifications (when the call asked for them), then "done"; the same in both eras. */
function registerProgress(mcp: McpServer): void {
  mcp.registerTool(
    "progress",
    { inputSchema: z.object({ n: z.number().int().min(1).max(20) }) },
    async ({ n }, ctx) => {
      const token = ctx.mcpReq._meta?.progressToken;
      if (token !== undefined) {
        for (let i = 1; i <= n; i++) {
          await ctx.mcpReq.notify({
            method: "notifications/progress",
            params: { progressToken: token, progress: i, total: n },
          });
        }
      }
      return text("done");
    },
  );
}

/** The 2026-07-28-only stateless endpoint. */
export function modernHandler(): FetchHandler {
  let current: Request | undefined;
  const handler = createMcpHandler(() => modernServer(current), { legacy: "reject" });
  return async (request) => {
    current = request;
    return handler.fetch(request);
  };
}

function legacyServer(): McpServer {
  const mcp = new McpServer({ name: "legacy-upstream", version: "1.0.0" }, { capabilities: { logging: {} } });
  mcp.registerTool("echo", { inputSchema: z.object({ text: z.string() }) }, async ({ text: t }) => text(t));
  mcp.registerTool("whoami", {}, async (ctx) =>
    text(ctx.http?.req?.headers.get("mcp-protocol-version") ?? "(no MCP-Protocol-Version header)"),
  );
  mcp.registerTool("ask", {}, async (ctx) => {
    const result = await ctx.mcpReq.elicitInput({
      message: "What is your name?",
      requestedSchema: NAME_SCHEMA,
    });
    const name = result.action === "accept" ? String(result.content?.name ?? "") : "";
    return text(`hello ${name}`);
  });
  mcp.registerTool("roots", {}, async (ctx) => {
    const listed = (await ctx.mcpReq.send({ method: "roots/list" })) as { roots: unknown[] };
    return text(JSON.stringify(listed.roots));
  });
  registerProgress(mcp);
  return mcp;
}

/** The 2025-era endpoint with sessions; `close()` ends every session. */
export function legacyHandler(): FetchHandler & {
  sessions: Map<string, WebStandardStreamableHTTPServerTransport>;
} {
  const sessions = new Map<string, WebStandardStreamableHTTPServerTransport>();
  const handle = async (request: Request): Promise<Response> => {
    const sid = request.headers.get("mcp-session-id");
    let transport = sid ? sessions.get(sid) : undefined;
    if (sid && !transport) {
      return Response.json(
        { jsonrpc: "2.0", id: null, error: { code: -32001, message: "Session not found" } },
        { status: 404 },
      );
    }
    if (!transport) {
      const created = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          sessions.set(id, created);
        },
        onsessionclosed: (id) => {
          sessions.delete(id);
        },
      });
      await legacyServer().connect(created);
      transport = created;
    }
    return transport.handleRequest(request);
  };
  return Object.assign(handle, { sessions });
}
