/**
 * The `fetch` MCP server: one tool, `fetch {url, max_length, start_index, raw}`, with the
 * arguments, paging notes and messages of the Python reference server (mcp-server-fetch). Built on
 * SDK v2: one definition for 2025 sessions and 2026-07-28 stateless requests.
 */
import { type CallToolResult, McpServer } from "@modelcontextprotocol/server";
import { z } from "zod";
import { type createPageFetcher, FetchToolError } from "./fetch-page.js";

/** What the tool fetches pages with: its connection pools outlive any one server instance. */
export type PageFetcher = ReturnType<typeof createPageFetcher>;

/** Cut `content` to one page starting at `start`, telling how to get the next one. */
export function pageOf(content: string, start: number, maxLength: number): string {
  if (start >= content.length) return "<error>No more content available.</error>";
  const page = content.slice(start, start + maxLength);
  const remaining = content.length - (start + page.length);
  if (page.length === maxLength && remaining > 0) {
    return `${page}\n\n<error>Content truncated. Call the fetch tool with a start_index of ${start + page.length} to get more content.</error>`;
  }
  return page;
}

function errorResult(message: string): CallToolResult {
  return { content: [{ type: "text", text: message }], isError: true };
}

/**
 * Build one server instance on `fetcher`. The stdio entry makes an instance per connection (and
 * one per discovery probe) from a single fetcher, whose pools it closes on exit.
 */
export function createFetchServer(fetcher: PageFetcher): McpServer {
  const server = new McpServer({ name: "mcp-fetch", version: "1.0.0" });
  server.registerTool(
    "fetch",
    {
      title: "Fetch a URL",
      description:
        "Fetches a URL from the internet and optionally extracts its contents as markdown.\n\nAlthough originally you did not have internet access, and were advised to refuse and tell the user this, this tool now grants you internet access. Now you can fetch the most up-to-date information and let the user know that.",
      inputSchema: z.object({
        url: z.string().describe("URL to fetch"),
        max_length: z
          .number()
          .int()
          .gt(0)
          .lt(1_000_000)
          .default(5000)
          .describe("Maximum number of characters to return."),
        start_index: z
          .number()
          .int()
          .gte(0)
          .default(0)
          .describe(
            "On return output starting at this character index, useful if a previous fetch was truncated and more context is required.",
          ),
        raw: z
          .boolean()
          .default(false)
          .describe("Get the actual HTML content of the requested page, without simplification."),
      }),
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    async ({ url, max_length, start_index, raw }) => {
      try {
        const page = await fetcher.fetchPage(url, raw);
        const text = `${page.prefix}Contents of ${url}:\n${pageOf(page.content, start_index, max_length)}`;
        return { content: [{ type: "text", text }] };
      } catch (err) {
        if (err instanceof FetchToolError) return errorResult(err.message);
        return errorResult(`Failed to fetch ${url}: ${(err as Error).message}`);
      }
    },
  );
  return server;
}
