/**
 * A client's redirect target on loopback, as a desktop MCP client runs one: answers a small
 * page and hands over each URL it receives (the authorization response).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface RedirectTarget {
  /** http://127.0.0.1:{port}/callback */
  url: string;
  /**
   * The next authorization response to arrive (or the one that already did); rejects after
   * `timeoutMs` so that a browser that never came back fails the test at this step.
   */
  next(timeoutMs?: number): Promise<URL>;
  close(): Promise<void>;
}

export async function startRedirectTarget(): Promise<RedirectTarget> {
  const waiting: Array<(u: URL) => void> = [];
  const arrived: URL[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", `http://${req.headers.host}`);
    // A browser also asks for /favicon.ico: only the callback path is an authorization response.
    if (url.pathname !== "/callback") {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/html" }).end("<p>You can close this window.</p>");
    const waiter = waiting.shift();
    if (waiter) waiter(url);
    else arrived.push(url);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}/callback`;
  return {
    url,
    next: (timeoutMs = 30_000) => {
      const ready = arrived.shift();
      if (ready) return Promise.resolve(ready);
      return new Promise<URL>((resolve, reject) => {
        const take = (u: URL) => {
          clearTimeout(timer);
          resolve(u);
        };
        const timer = setTimeout(() => {
          waiting.splice(waiting.indexOf(take), 1);
          reject(new Error(`no authorization response reached ${url} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.push(take);
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
