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

/** An answer the tap sends in the owner's place. */
export interface ForgedAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface RelayTap {
  port: number;
  captured: Captured[];
  /** Set: every chunk of the owner's answers passes through it on its way back (someone altering them). */
  alter?: (chunk: Buffer) => Buffer;
  /** Set: the tap answers relayed requests itself, the owner never sees them (someone answering in its place). */
  forge?: () => ForgedAnswer;
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
    if (tap.forge) {
      const forged = tap.forge();
      res.writeHead(forged.status, forged.headers);
      res.end(forged.body);
      return;
    }
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
      if (tap.alter) {
        const alter = tap.alter;
        answer.body.on("data", (chunk: Buffer) => res.write(alter(chunk)));
        answer.body.on("end", () => res.end());
      } else answer.body.pipe(res);
      res.once("close", () => answer.body.destroy());
    } catch {
      res.destroy();
    }
  });
  server.requestTimeout = 0;
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const tap: RelayTap = {
    port: (server.address() as AddressInfo).port,
    captured,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return tap;
}
