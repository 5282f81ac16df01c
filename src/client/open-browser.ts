/**
 * Opens a URL in the system browser, best effort: `open` on macOS, the URL protocol handler
 * on Windows, `xdg-open` elsewhere. Never throws and never waits; the URL is printed anyway,
 * so a missing opener (a server, a container) only means the person copies it by hand.
 */
import { spawn } from "node:child_process";

function opener(url: string): { command: string; args: string[] } {
  if (process.platform === "darwin") return { command: "open", args: [url] };
  // Not `cmd /c start`: cmd would read `&`, `%` and `^` in the URL's query as its own syntax.
  if (process.platform === "win32")
    return { command: "rundll32", args: ["url.dll,FileProtocolHandler", url] };
  return { command: "xdg-open", args: [url] };
}

/** Starts the platform's opener for an http(s) `url`, detached; failures are ignored. */
export function openBrowser(url: string): void {
  // The URL comes from the server's metadata: never hand the opener a file: or other scheme.
  if (!/^https?:\/\//i.test(url)) return;
  const { command, args } = opener(url);
  try {
    const child = spawn(command, args, { stdio: "ignore", detached: true, windowsHide: true });
    child.on("error", () => undefined);
    child.unref();
  } catch {
    // No opener here: the printed URL is the fallback.
  }
}
