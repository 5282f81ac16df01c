/**
 * A real upstream MCP server of both protocol eras: the MCP SDK v2 `McpServer` behind
 * `createMcpHandler` (2026-07-28 per-request envelopes, and 2025 requests through its stateless
 * legacy fallback) on node:http, 127.0.0.1, port 0. It records which era served each request.
 *
 * Tools:
 *   whoami       the identity headers the request arrived with (JSON text), and whether it
 *                carried an Authorization header (it must not: the gateway never forwards the
 *                client's token)
 *   read_note    "note: …" (a tool anyone may call, in the per-tool policy tests)
 *   write_note   "written: {text}" (a tool only some may call)
 *   admin_reset  "reset" (a tool that needs a scope more)
 *   fail_note    an isError result
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { createMcpHandler, McpServer } from "@modelcontextprotocol/server";
import { z } from "zod";

export interface BothErasUpstream {
  /** The MCP endpoint, e.g. http://127.0.0.1:1234/mcp */
  url: string;
  /** The era of every server instance built so far, in order ("legacy" | "modern"). */
  eras: string[];
  /** Every POST that reached it: its headers, and the JSON-RPC method and tool name of its body. */
  posts: ReceivedPost[];
  close(): Promise<void>;
}

export interface ReceivedPost {
  headers: IncomingMessage["headers"];
  method?: string;
  tool?: string;
}

function describePost(req: IncomingMessage, body: Buffer): ReceivedPost {
  try {
    const message = JSON.parse(body.toString("utf8")) as { method?: string; params?: { name?: string } };
    return { headers: req.headers, method: message.method, tool: message.params?.name };
  } catch {
    return { headers: req.headers };
  }
}

/** node:http request -> web Request (the handler is fetch-shaped). */
async function toRequest(req: IncomingMessage, base: string, posts: ReceivedPost[]): Promise<Request> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    for (const v of [value ?? []].flat()) headers.append(name, v);
  }
  const method = req.method ?? "GET";
  const chunks: Buffer[] = [];
  if (method !== "GET" && method !== "HEAD") for await (const c of req) chunks.push(c as Buffer);
  if (method === "POST") posts.push(describePost(req, Buffer.concat(chunks)));
  return new Request(new URL(req.url ?? "/", base), {
    method,
    headers,
    body: chunks.length ? Buffer.concat(chunks) : undefined,
  });
}

async function send(res: ServerResponse, response: Response): Promise<void> {
  res.writeHead(response.status, Object.fromEntries(response.headers));
  if (!response.body) {
    res.end();
    return;
  }
  const body = Readable.fromWeb(response.body as import("node:stream/web").ReadableStream);
  res.on("close", () => body.destroy());
  body.pipe(res);
}

export interface BothErasOptions {
  /** Answer tools/list in pages of this many tools (with `nextCursor`), as long lists are. */
  toolsPageSize?: number;
}

export async function startBothErasUpstream(
  path = "/mcp",
  options: BothErasOptions = {},
): Promise<BothErasUpstream> {
  const eras: string[] = [];
  const posts: ReceivedPost[] = [];
  const handler = createMcpHandler((ctx) => {
    eras.push(ctx.era);
    const server = new McpServer({ name: "both-eras-upstream", version: "1.0.0" });
    server.registerTool("whoami", { description: "The identity headers of this request" }, async () => {
      const h = ctx.requestInfo?.headers;
      const identity = {
        "x-user-id": h?.get("x-user-id"),
        "x-user-name": h?.get("x-user-name"),
        "x-auth-client-id": h?.get("x-auth-client-id"),
        authorization: h?.has("authorization") ?? false,
        era: ctx.era,
      };
      return { content: [{ type: "text", text: JSON.stringify(identity) }] };
    });
    server.registerTool("read_note", { description: "Read the note" }, async () => ({
      content: [{ type: "text", text: "note: hello" }],
    }));
    server.registerTool(
      "write_note",
      { description: "Write the note", inputSchema: z.object({ text: z.string() }) },
      async ({ text }) => ({ content: [{ type: "text", text: `written: ${text}` }] }),
    );
    server.registerTool("admin_reset", { description: "Reset everything" }, async () => ({
      content: [{ type: "text", text: "reset" }],
    }));
    server.registerTool("fail_note", { description: "Always fails" }, async () => ({
      content: [{ type: "text", text: "no" }],
      isError: true,
    }));
    const pageSize = options.toolsPageSize;
    if (pageSize) {
      const names = ["whoami", "read_note", "write_note", "admin_reset", "fail_note"];
      server.server.setRequestHandler("tools/list", async (request) => {
        const start = Number(request.params?.cursor ?? 0);
        const tools = names
          .slice(start, start + pageSize)
          .map((name) => ({ name, inputSchema: { type: "object" as const } }));
        const next = start + pageSize;
        return next < names.length ? { tools, nextCursor: String(next) } : { tools };
      });
    }
    return server;
  });
  let base = "";
  const httpServer: Server = createServer((req, res) => {
    if (!req.url?.startsWith(path)) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    toRequest(req, base, posts)
      .then((request) => handler.fetch(request))
      .then((response) => send(res, response))
      .catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" }).end(String(err));
      });
  });
  await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
  return {
    url: `${base}${path}`,
    eras,
    posts,
    async close() {
      await handler.close();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}
