/**
 * Reference for the proxy's added latency: the least a Node proxy can do, a bare node:http
 * server passing each request to TARGET through an undici Pool and piping the answer back,
 * with no routing, no token check and no header filtering. What the gateway adds beyond this
 * row is the gateway's own work; what this row adds over the direct upstream is the extra hop.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Pool } from "undici";

const target = new URL(process.env.TARGET as string);
const pool = new Pool(target.origin, { keepAliveTimeout: 60_000 });
/** Hop-by-hop headers neither side may pass on. */
const HOP = new Set(["connection", "keep-alive", "transfer-encoding", "host"]);

const server = createServer(async (req, res) => {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) if (value && !HOP.has(name)) headers[name] = value;
  try {
    const upstream = await pool.request({
      method: req.method as "POST",
      path: `${target.pathname}${target.search}`,
      headers,
      body: req.headers["content-length"] ? req : undefined,
    });
    const back: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(upstream.headers))
      if (value && !HOP.has(name)) back[name] = value;
    res.writeHead(upstream.statusCode, back);
    upstream.body.pipe(res);
  } catch {
    res.writeHead(502).end();
  }
});
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`READY ${JSON.stringify({ url: `http://127.0.0.1:${port}${target.pathname}` })}\n`);
});
process.on("SIGTERM", () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
