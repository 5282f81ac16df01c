/**
 * A client's own web server on loopback, as a client hosts its metadata document and its JWK
 * set: serves JSON documents put at paths, with the headers given, and counts every fetch.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface DocumentServer {
  /** http://127.0.0.1:{port} */
  base: string;
  /** Serves `body` (JSON-encoded) at `path` from now on; returns the document's URL. */
  put(path: string, body: unknown, headers?: Record<string, string>): string;
  /** How many times `path` was fetched. */
  fetches(path: string): number;
  close(): Promise<void>;
}

export async function startDocumentServer(): Promise<DocumentServer> {
  const documents = new Map<string, { body: string; headers: Record<string, string> }>();
  const counts = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const path = req.url ?? "";
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const doc = documents.get(path);
    if (!doc) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json", ...doc.headers }).end(doc.body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    put(path, body, headers = {}) {
      documents.set(path, { body: JSON.stringify(body), headers });
      return `${base}${path}`;
    },
    fetches: (path) => counts.get(path) ?? 0,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
