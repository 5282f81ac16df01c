/**
 * A recording pass-through: node:http on 127.0.0.1 that forwards every request, headers as
 * received and bodies streamed both ways, to `target`, and records what it forwarded. Put where
 * a proxy's config points at the gateway, it shows exactly which headers the proxy sent, e.g. on
 * its /verify subrequest, which the gateway's own behaviour cannot show (the gateway may ignore
 * a header that a proxy should not have passed on).
 */
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import type { RecordedRequest } from "./upstream.js";

export interface PassThrough {
  /** `http://127.0.0.1:port`, to use as the proxy's gateway address. */
  url: string;
  /** Every request forwarded so far, in arrival order. */
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export async function startPassThrough(target: string): Promise<PassThrough> {
  const to = new URL(target);
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? "", url: req.url ?? "", headers: { ...req.headers } });
    const out = request(
      {
        host: to.hostname,
        port: to.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
        answer.pipe(res);
      },
    );
    out.on("error", () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
