/**
 * Run an MCP server on stdin/stdout as a bridge child: exit when stdin closes or on SIGTERM/SIGINT,
 * so a gateway that goes away never leaves one of these behind.
 */
import type { McpServer } from "@modelcontextprotocol/server";
import { serveStdio } from "@modelcontextprotocol/server/stdio";

/** Call `stop` once when the peer goes away or the process is told to end. */
function onPeerGone(stop: () => void): void {
  let stopped = false;
  const once = () => {
    if (stopped) return;
    stopped = true;
    stop();
  };
  process.stdin.once("end", once);
  process.stdin.once("close", once);
  process.once("SIGTERM", once);
  process.once("SIGINT", once);
}

/**
 * Serve both protocol eras on stdio (SDK v2): the connection's opening picks its era, an
 * `initialize` for a 2025 session or `server/discover` (or any request with the 2026-07-28
 * `_meta` envelope) for stateless requests. `factory` makes one instance per connection, and
 * one for a discovery probe; `cleanup` runs once before exit (pools, child processes).
 */
export function serveBothEras(factory: () => McpServer, cleanup: () => Promise<void> = async () => {}): void {
  const handle = serveStdio(factory, { onerror: (err) => process.stderr.write(`${err.message}\n`) });
  onPeerGone(() => {
    void handle
      .close()
      .then(cleanup)
      .finally(() => process.exit(0));
  });
}
