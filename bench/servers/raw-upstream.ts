/**
 * A raw fast upstream for the proxy's own ceiling: a bare node:http server that reads each
 * request and answers a fixed JSON-RPC result to a `tools/call` (the answer an MCP server in
 * JSON-response mode gives), with no MCP SDK behind it. Against it the proxy's own cost is
 * most of what a request costs, so the row built on it shows the proxy rather than the SDK.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

const BODY = Buffer.from(
  JSON.stringify({ jsonrpc: "2.0", id: 1, result: { content: [{ type: "text", text: "hello" }] } }),
);
const HEADERS = { "content-type": "application/json", "content-length": String(BODY.length) };

const server = createServer((req, res) => {
  req.resume();
  req.on("end", () => res.writeHead(200, HEADERS).end(BODY));
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`READY ${JSON.stringify({ url: `http://127.0.0.1:${port}/mcp` })}\n`);
});
process.on("SIGTERM", () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
