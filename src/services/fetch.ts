/**
 * Entry point of the native `fetch` MCP server on stdio: `node dist/services/fetch.js
 * [--user-agent UA] [--ignore-robots-txt]`. MCP_FETCH_ALLOW_PRIVATE=1 lets it reach private and
 * loopback addresses (for tests against a local server only).
 */
import { parseArgs } from "node:util";
import { createPageFetcher } from "./fetch-page.js";
import { createFetchServer } from "./fetch-server.js";
import { serveBothEras } from "./stdio.js";

const { values } = parseArgs({
  options: { "user-agent": { type: "string" }, "ignore-robots-txt": { type: "boolean" } },
  strict: false,
});
const allowPrivate =
  process.env.MCP_FETCH_ALLOW_PRIVATE === "1" || process.env.MCP_FETCH_ALLOW_PRIVATE === "true";
// One fetcher (and its connection pools) for every server instance of this process.
const fetcher = createPageFetcher({
  userAgent: values["user-agent"] as string | undefined,
  ignoreRobots: values["ignore-robots-txt"] === true || process.env.MCP_FETCH_IGNORE_ROBOTS === "1",
  allowPrivate,
});
serveBothEras(
  () => createFetchServer(fetcher),
  () => fetcher.close(),
);
