/**
 * Opens a URL in the system browser, best effort: `$BROWSER` when set (the usual convention:
 * a command, `%s` standing for the URL or the URL appended), else `open` on macOS, the URL
 * protocol handler on Windows, `xdg-open` elsewhere. Never throws and never waits; the URL is
 * printed anyway, so a missing opener (a server, a container) only means the person copies it.
 */
import { spawn } from "node:child_process";

function opener(url: string, env: NodeJS.ProcessEnv): { command: string; args: string[] } {
  // No shell: the URL comes from the server, and a shell would read its `&` and `;`.
  const configured = env.BROWSER?.split(":")[0]?.trim();
  if (configured) {
    const [command = "", ...args] = configured.split(/\s+/);
    return args.includes("%s")
      ? { command, args: args.map((a) => (a === "%s" ? url : a)) }
      : { command, args: [...args, url] };
  }
  if (process.platform === "darwin") return { command: "open", args: [url] };
  // Not `cmd /c start`: cmd would read `&`, `%` and `^` in the URL's query as its own syntax.
  if (process.platform === "win32")
    return { command: "rundll32", args: ["url.dll,FileProtocolHandler", url] };
  return { command: "xdg-open", args: [url] };
}

/** Starts the platform's opener for an http(s) `url`, detached; failures are ignored. */
export function openBrowser(url: string, env: NodeJS.ProcessEnv = process.env): void {
  // The URL comes from the server's metadata: never hand the opener a file: or other scheme.
  if (!/^https?:\/\//i.test(url)) return;
  const { command, args } = opener(url, env);
  try {
    const child = spawn(command, args, { stdio: "ignore", detached: true, windowsHide: true });
    child.on("error", () => undefined);
    child.unref();
  } catch {
    // No opener here: the printed URL is the fallback.
  }
}
