/**
 * A GitHub emulator for tests: a real HTTP server on loopback that speaks GitHub's documented
 * OAuth web flow and the few REST endpoints the gateway reads. It is reached the way GitHub
 * Enterprise Server is: web base `http://127.0.0.1:PORT`, API base `http://127.0.0.1:PORT/api/v3`.
 *
 * Behaviour follows docs.github.com ("Authorizing OAuth apps", "Troubleshooting OAuth app access
 * token request errors", REST users/emails/orgs/teams). Where GitHub does not document a detail
 * (the error for a wrong PKCE verifier), the closest documented answer is used and said so.
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A GitHub account as the emulator knows it. */
export interface EmulatorUser {
  id: number;
  login: string;
  name?: string;
  /** The public profile email; leave it out to make the user's email private (null on /user). */
  email?: string;
  /** What /user/emails lists; default: the profile email as primary and verified. */
  emails?: Array<{ email: string; primary: boolean; verified: boolean }>;
  orgs?: string[];
  teams?: Array<{ org: string; slug: string }>;
}

export interface GitHubEmulatorOptions {
  clientId?: string;
  clientSecret?: string;
  /** The OAuth app's registered callback URL. Loopback hosts match on any port, as on GitHub. */
  callbackUrl?: string;
  user?: EmulatorUser;
  /** Approve without showing the page (default true), so headless tests can follow redirects. */
  autoApprove?: boolean;
}

export interface GitHubEmulator {
  webUrl: string;
  apiUrl: string;
  clientId: string;
  clientSecret: string;
  callbackUrl: string;
  /** Signs this user in (and registers them, replacing an earlier user with the same id). */
  setUser(user: EmulatorUser): void;
  autoApprove: boolean;
  /** When set, every /api/v3 request answers with this HTTP status (GitHub having a bad day). */
  apiFailure: number | undefined;
  /** Paths requested, in order, without query strings (codes and tokens never land here). */
  requests: string[];
  stop(): Promise<void>;
}

/**
 * The `idp.github` settings of a gateway that signs in through `emulator` (its OAuth app and
 * URLs), with `rules` (allowed_users, allowed_orgs, allowed_teams…) added.
 */
export function githubSettings(emulator: GitHubEmulator, rules: Record<string, unknown> = {}) {
  return {
    client_id: emulator.clientId,
    client_secret: emulator.clientSecret,
    web_url: emulator.webUrl,
    api_url: emulator.apiUrl,
    ...rules,
  };
}

interface PendingCode {
  clientId: string;
  redirectUri: string;
  scope: string;
  userId: number;
  codeChallenge?: string;
  expiresAt: number;
}

const DOCS = "https://docs.github.com/apps/managing-oauth-apps";
const TOKEN_ERRORS = {
  incorrect_client_credentials: "The client_id and/or client_secret passed are incorrect.",
  redirect_uri_mismatch: "The redirect_uri MUST match the registered callback URL for this application.",
  bad_verification_code: "The code passed is incorrect or expired.",
} as const;
const LOOPBACK = new Set(["127.0.0.1", "[::1]", "localhost"]);

const b64url = (buf: Buffer) => buf.toString("base64url");
const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** GitHub's rule: same scheme and host (and port, except on loopback); path at or below the callback's. */
function redirectMatches(registered: string, given: string): boolean {
  let r: URL;
  let g: URL;
  try {
    r = new URL(registered);
    g = new URL(given);
  } catch {
    return false;
  }
  if (r.protocol !== g.protocol || r.hostname !== g.hostname) return false;
  if (r.port !== g.port && !LOOPBACK.has(r.hostname)) return false;
  const base = r.pathname.endsWith("/") ? r.pathname : `${r.pathname}/`;
  return g.pathname === r.pathname || g.pathname.startsWith(base);
}

async function readBody(req: IncomingMessage): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  if ((req.headers["content-type"] ?? "").includes("application/json")) {
    try {
      const parsed = JSON.parse(text) as Record<string, unknown>;
      return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, String(v)]));
    } catch {
      return {};
    }
  }
  return Object.fromEntries(new URLSearchParams(text));
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
  res.end(JSON.stringify(body));
}

function redirect(res: ServerResponse, to: string, params: Record<string, string | undefined>) {
  const url = new URL(to);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  res.writeHead(302, { location: url.toString() });
  res.end();
}

/** Starts the emulator on 127.0.0.1 and an ephemeral port. */
export async function startGitHubEmulator(opts: GitHubEmulatorOptions = {}): Promise<GitHubEmulator> {
  const users = new Map<number, EmulatorUser>();
  const codes = new Map<string, PendingCode>();
  const tokens = new Map<string, { userId: number; scope: string }>();
  let signedIn: EmulatorUser = opts.user ?? {
    id: 583231,
    login: "octocat",
    name: "The Octocat",
    email: "octocat@github.com",
  };
  users.set(signedIn.id, signedIn);

  const emulator: GitHubEmulator = {
    webUrl: "",
    apiUrl: "",
    clientId: opts.clientId ?? `Iv1.${randomBytes(8).toString("hex")}`,
    clientSecret: opts.clientSecret ?? randomBytes(20).toString("hex"),
    callbackUrl: opts.callbackUrl ?? "http://127.0.0.1/callback",
    setUser(user) {
      users.set(user.id, user);
      signedIn = user;
    },
    autoApprove: opts.autoApprove ?? true,
    apiFailure: undefined,
    requests: [],
    stop: async () => {},
  };

  /** Validates an authorization request; on success returns its parameters. */
  function checkAuthorize(p: URLSearchParams, res: ServerResponse) {
    if (p.get("client_id") !== emulator.clientId) {
      res.writeHead(404, { "content-type": "text/html" });
      res.end("<h1>404</h1><p>This is not the web page you are looking for.</p>");
      return undefined;
    }
    const redirectUri = p.get("redirect_uri") ?? emulator.callbackUrl;
    if (!redirectMatches(emulator.callbackUrl, redirectUri)) {
      // GitHub sends the browser to the registered callback with the error.
      redirect(res, emulator.callbackUrl, {
        error: "redirect_uri_mismatch",
        error_description: "The redirect_uri MUST match the registered callback URL for this application.",
        error_uri: `${DOCS}/troubleshooting-authorization-request-errors/#redirect-uri-mismatch`,
        state: p.get("state") ?? undefined,
      });
      return undefined;
    }
    const codeChallenge = p.get("code_challenge") ?? undefined;
    if (codeChallenge && p.get("code_challenge_method") !== "S256") {
      res.writeHead(400, { "content-type": "text/html" });
      res.end("<h1>400</h1><p>code_challenge_method must be S256.</p>");
      return undefined;
    }
    const scope = (p.get("scope") ?? "")
      .split(/[\s,]+/)
      .filter(Boolean)
      .join(",");
    return { redirectUri, state: p.get("state") ?? undefined, scope, codeChallenge };
  }

  function issueCode(res: ServerResponse, a: NonNullable<ReturnType<typeof checkAuthorize>>) {
    const code = randomBytes(10).toString("hex");
    codes.set(code, {
      clientId: emulator.clientId,
      redirectUri: a.redirectUri,
      scope: a.scope,
      userId: signedIn.id,
      codeChallenge: a.codeChallenge,
      expiresAt: Date.now() + 10 * 60_000,
    });
    redirect(res, a.redirectUri, { code, state: a.state });
  }

  function authorizePage(res: ServerResponse, p: URLSearchParams) {
    const hidden = [...p.entries()]
      .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
      .join("\n");
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(`<!doctype html><html><head><title>Authorize application</title></head><body>
<h1>Authorize application</h1>
<p>Signed in as <strong id="login">${escapeHtml(signedIn.login)}</strong>.</p>
<p>Scopes: <code>${escapeHtml(p.get("scope") ?? "(none)")}</code></p>
<form method="post" action="/login/oauth/authorize">${hidden}
<button type="submit" name="authorize" value="1" id="js-oauth-authorize-btn">Authorize</button>
<button type="submit" name="authorize" value="0" id="js-oauth-cancel-btn">Cancel</button>
</form></body></html>`);
  }

  function tokenReply(req: IncomingMessage, res: ServerResponse, body: Record<string, string>) {
    if ((req.headers.accept ?? "").includes("application/json")) return sendJson(res, 200, body);
    res.writeHead(200, { "content-type": "application/x-www-form-urlencoded; charset=utf-8" });
    res.end(new URLSearchParams(body).toString());
  }

  function tokenError(req: IncomingMessage, res: ServerResponse, error: keyof typeof TOKEN_ERRORS) {
    // GitHub answers these with HTTP 200 and the error in the body.
    tokenReply(req, res, {
      error,
      error_description: TOKEN_ERRORS[error],
      error_uri: `${DOCS}/troubleshooting-oauth-app-access-token-request-errors/#${error.replaceAll("_", "-")}`,
    });
  }

  async function accessToken(req: IncomingMessage, res: ServerResponse, query: URLSearchParams) {
    const p = { ...Object.fromEntries(query), ...(await readBody(req)) };
    if (p.client_id !== emulator.clientId || p.client_secret !== emulator.clientSecret) {
      return tokenError(req, res, "incorrect_client_credentials");
    }
    const pending = p.code ? codes.get(p.code) : undefined;
    if (p.code) codes.delete(p.code); // one attempt per code, successful or not
    if (!pending || pending.expiresAt < Date.now() || pending.clientId !== p.client_id) {
      return tokenError(req, res, "bad_verification_code");
    }
    if (p.redirect_uri && p.redirect_uri !== pending.redirectUri)
      return tokenError(req, res, "redirect_uri_mismatch");
    if (pending.codeChallenge) {
      // GitHub does not document the error for a failed PKCE check; a bad code is the closest.
      const actual = p.code_verifier ? b64url(createHash("sha256").update(p.code_verifier).digest()) : "";
      if (actual !== pending.codeChallenge) return tokenError(req, res, "bad_verification_code");
    }
    const token = `gho_${randomBytes(27).toString("base64url").replace(/[-_]/g, "x").slice(0, 36)}`;
    tokens.set(token, { userId: pending.userId, scope: pending.scope });
    tokenReply(req, res, { access_token: token, token_type: "bearer", scope: pending.scope });
  }

  function api(req: IncomingMessage, res: ServerResponse, path: string) {
    if (emulator.apiFailure) return sendJson(res, emulator.apiFailure, { message: "Server Error" });
    const auth = /^(?:bearer|token)\s+(\S+)$/i.exec(req.headers.authorization ?? "");
    const grant = auth?.[1] ? tokens.get(auth[1]) : undefined;
    const user = grant ? users.get(grant.userId) : undefined;
    if (!grant || !user) {
      return sendJson(res, 401, {
        message: "Bad credentials",
        documentation_url: "https://docs.github.com/rest",
      });
    }
    const scopes = new Set(grant.scope.split(",").filter(Boolean));
    const headers = { "x-oauth-scopes": [...scopes].join(", ") };
    const notFound = () => sendJson(res, 404, { message: "Not Found" }, headers);
    switch (path) {
      case "/api/v3/user":
        return sendJson(
          res,
          200,
          {
            login: user.login,
            id: user.id,
            type: "User",
            site_admin: false,
            name: user.name ?? null,
            email: user.email ?? null,
          },
          headers,
        );
      case "/api/v3/user/emails": {
        if (!scopes.has("user:email") && !scopes.has("user")) return notFound();
        const emails =
          user.emails ?? (user.email ? [{ email: user.email, primary: true, verified: true }] : []);
        return sendJson(
          res,
          200,
          emails.map((e) => ({ ...e, visibility: e.primary ? "private" : null })),
          headers,
        );
      }
      case "/api/v3/user/orgs":
        // Without read:org only public memberships show; the emulator treats all as private.
        if (!scopes.has("read:org")) return sendJson(res, 200, [], headers);
        return sendJson(
          res,
          200,
          (user.orgs ?? []).map((login, i) => ({ login, id: 1000 + i })),
          headers,
        );
      case "/api/v3/user/teams":
        if (!scopes.has("read:org")) return notFound();
        return sendJson(
          res,
          200,
          (user.teams ?? []).map((t, i) => ({
            id: 2000 + i,
            slug: t.slug,
            name: t.slug,
            organization: { login: t.org },
          })),
          headers,
        );
      default:
        return notFound();
    }
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    emulator.requests.push(url.pathname);
    const route = `${req.method} ${url.pathname}`;
    const handle = async () => {
      if (route === "GET /login/oauth/authorize") {
        const a = checkAuthorize(url.searchParams, res);
        if (!a) return;
        return emulator.autoApprove ? issueCode(res, a) : authorizePage(res, url.searchParams);
      }
      if (route === "POST /login/oauth/authorize") {
        const form = new URLSearchParams(await readBody(req));
        const a = checkAuthorize(form, res);
        if (!a) return;
        if (form.get("authorize") === "1") return issueCode(res, a);
        return redirect(res, a.redirectUri, {
          error: "access_denied",
          error_description: "The user has denied your application access.",
          error_uri: `${DOCS}/troubleshooting-authorization-request-errors/#access-denied`,
          state: a.state,
        });
      }
      if (route === "POST /login/oauth/access_token") return accessToken(req, res, url.searchParams);
      if (req.method === "GET" && url.pathname.startsWith("/api/v3/")) return api(req, res, url.pathname);
      sendJson(res, 404, { message: "Not Found" });
    };
    handle().catch((err: Error) => sendJson(res, 500, { message: err.message }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  emulator.webUrl = `http://127.0.0.1:${port}`;
  emulator.apiUrl = `http://127.0.0.1:${port}/api/v3`;
  emulator.stop = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return emulator;
}
