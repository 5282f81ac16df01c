/**
 * A recording forwarder in front of an instance's internal listener, standing where someone who
 * can see the traffic between instances stands: every relayed request passes through it, is
 * kept exactly as it went (method, path, headers, body), and goes on to the listener; the
 * answer comes back as it streams (SSE included).
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { request } from "undici";

export interface Captured {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface RelayTap {
  port: number;
  captured: Captured[];
  close(): Promise<void>;
}

const CONNECTION = new Set(["host", "connection", "keep-alive", "content-length", "transfer-encoding"]);

/** Headers of a captured request as a client sends them again. */
export function resendable(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined && !CONNECTION.has(name))
      out[name] = Array.isArray(value) ? value.join(", ") : value;
  return out;
}

export async function startRelayTap(port: number, targetPort: number): Promise<RelayTap> {
  const captured: Captured[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    captured.push({ method: req.method ?? "GET", url: req.url ?? "/", headers: { ...req.headers }, body });
    try {
      const answer = await request(`http://127.0.0.1:${targetPort}${req.url}`, {
        method: (req.method ?? "GET") as "POST",
        headers: resendable(req.headers),
        body: body.length > 0 ? body : undefined,
      });
      const headers: Record<string, string | string[]> = {};
      for (const [n, v] of Object.entries(answer.headers))
        if (v !== undefined && !CONNECTION.has(n)) headers[n] = v;
      res.writeHead(answer.statusCode, headers);
      res.flushHeaders();
      answer.body.on("error", () => res.destroy());
      answer.body.pipe(res);
      res.once("close", () => answer.body.destroy());
    } catch {
      res.destroy();
    }
  });
  server.requestTimeout = 0;
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    captured,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
