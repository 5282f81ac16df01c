/**
 * The loopback redirect receiver of a native-app login (RFC 8252 §7.3): node:http on
 * 127.0.0.1, an ephemeral port, one callback request. It checks `state`, answers the browser
 * with a short page, and gives up after a timeout. Any other path gets a 404 and is not the
 * callback (browsers ask for /favicon.ico).
 */
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import escapeHtml from "escape-html";

/** What came back on the redirect. */
export interface AuthorizationResponse {
  code: string;
  /** RFC 9207 `iss`, when the server sends it. */
  iss?: string;
}

export interface LoopbackReceiver {
  /** `http://127.0.0.1:PORT/callback`: register and send this as redirect_uri. */
  redirectUrl: string;
  /** Resolves with the code; rejects on a wrong state, an error response, or the timeout. */
  result: Promise<AuthorizationResponse>;
  /** Stops listening (idempotent); a pending `result` rejects. */
  close(): Promise<void>;
}

/** A refusal or failure reported on the redirect, in OAuth's own terms. */
export class AuthorizationRedirectError extends Error {
  constructor(
    readonly error: string,
    description?: string,
  ) {
    super(description ? `${error}: ${description}` : error);
    this.name = "AuthorizationRedirectError";
  }
}

const CALLBACK_PATH = "/callback";

function page(res: ServerResponse, status: number, title: string, text: string): void {
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body style="font-family:system-ui,sans-serif;max-width:36em;margin:4em auto"><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p></body></html>`;
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    // Keep the code out of any Referer and the page out of any frame.
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    connection: "close",
  });
  res.end(html);
}

/** Starts listening on 127.0.0.1 (port 0) for one redirect carrying `state`. */
export async function startLoopbackReceiver(options: {
  state: string;
  timeoutMs: number;
  /**
   * Checks the response before anything else in it is read or shown (the RFC 9207 `iss`, so a
   * response from the wrong server is refused, its error text included); throws to refuse it.
   */
  checkResponse?: (params: URLSearchParams) => void;
}): Promise<LoopbackReceiver> {
  let settle!: { resolve: (r: AuthorizationResponse) => void; reject: (e: Error) => void };
  const result = new Promise<AuthorizationResponse>((resolve, reject) => {
    settle = { resolve, reject };
  });
  // Callers attach handlers later; avoid an unhandled rejection in between.
  result.catch(() => undefined);
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  const finish = (outcome: AuthorizationResponse | Error) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    if (outcome instanceof Error) settle.reject(outcome);
    else settle.resolve(outcome);
    // Let the answer page reach the browser before the server goes.
    setImmediate(() => {
      server.close();
      server.closeAllConnections();
    });
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname !== CALLBACK_PATH || req.method !== "GET") {
      page(res, 404, "Not found", "This is the mcp-gateway login receiver; nothing else is here.");
      return;
    }
    if (done) {
      page(res, 410, "Already done", "This login has already finished. You can close this tab.");
      return;
    }
    const params = url.searchParams;
    if (params.get("state") !== options.state) {
      page(res, 400, "Login refused", "The response does not belong to this login (state mismatch).");
      finish(new Error("the redirect carried a wrong state: refusing it (start the login again)"));
      return;
    }
    try {
      options.checkResponse?.(params);
    } catch (err) {
      page(res, 400, "Login refused", "The response did not come from the server this login started with.");
      finish(err as Error);
      return;
    }
    const error = params.get("error");
    if (error) {
      const description = params.get("error_description") ?? undefined;
      page(res, 400, "Login failed", description ? `${error}: ${description}` : error);
      finish(new AuthorizationRedirectError(error, description));
      return;
    }
    const code = params.get("code");
    if (!code) {
      page(res, 400, "Login failed", "The redirect carried no authorization code.");
      finish(new Error("the redirect carried no authorization code"));
      return;
    }
    page(res, 200, "Logged in", "You are logged in. You can close this tab and return to the terminal.");
    finish({ code, iss: params.get("iss") ?? undefined });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  timer = setTimeout(
    () =>
      finish(new Error(`timed out after ${Math.round(options.timeoutMs / 1000)} s waiting for the browser`)),
    options.timeoutMs,
  );
  const { port } = server.address() as AddressInfo;
  return {
    redirectUrl: `http://127.0.0.1:${port}${CALLBACK_PATH}`,
    result,
    close: async () => finish(new Error("the login was cancelled")),
  };
}
