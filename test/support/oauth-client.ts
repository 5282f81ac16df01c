/**
 * A test OAuth client that drives the gateway's real endpoints over HTTP like a browser and an
 * app would: registration, /authorize with PKCE, the login form, consent, and the token calls.
 */
import { createHash, randomBytes } from "node:crypto";

export const REDIRECT_URI = "http://127.0.0.1:9999/callback";

export interface RegisteredClient {
  client_id: string;
  client_secret?: string;
  registration_access_token: string;
  registration_client_uri: string;
  [key: string]: unknown;
}

export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

export async function registerClient(
  base: string,
  metadata: Record<string, unknown> = {},
): Promise<RegisteredClient> {
  const res = await fetch(`${base}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "Test client",
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: "none",
      ...metadata,
    }),
  });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as RegisteredClient;
}

/** A cookie jar for one "browser". */
export class Browser {
  private readonly cookies = new Map<string, string>();

  /**
   * `headers` go with every request (e.g. X-Forwarded-For from a test acting as a trusted proxy);
   * `fetchFn` is how it reaches hosts (a test that resolves made-up host names passes its own).
   */
  constructor(
    private readonly headers: Record<string, string> = {},
    private readonly fetchFn: typeof fetch = fetch,
  ) {}

  async get(url: string): Promise<Response> {
    return this.send(url, { method: "GET" });
  }

  /**
   * Posts a form as a current browser does from one of the site's own pages: with that page's
   * `Origin` and `Sec-Fetch-Site: same-origin`. `headers` replace or add to those (an attacker's
   * page, an older browser); an empty value leaves the header out.
   */
  async postForm(
    url: string,
    form: Record<string, string>,
    headers: Record<string, string> = {},
  ): Promise<Response> {
    const all: Record<string, string> = {
      "content-type": "application/x-www-form-urlencoded",
      origin: new URL(url).origin,
      "sec-fetch-site": "same-origin",
      ...headers,
    };
    return this.send(url, {
      method: "POST",
      headers: Object.fromEntries(Object.entries(all).filter(([, v]) => v !== "")),
      body: new URLSearchParams(form).toString(),
    });
  }

  private async send(url: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    for (const [name, value] of Object.entries(this.headers))
      if (!headers.has(name)) headers.set(name, value);
    if (this.cookies.size) headers.set("cookie", [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "));
    const res = await this.fetchFn(url, { ...init, headers, redirect: "manual" });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const eq = pair?.indexOf("=") ?? -1;
      if (pair && eq > 0) this.cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return res;
  }
}

/** Reads a hidden form field from a page. */
export function formField(html: string, name: string): string {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!m?.[1]) throw new Error(`no ${name} field in page: ${html.slice(0, 300)}`);
  return m[1];
}

export interface AuthorizeParams {
  client_id: string;
  redirect_uri?: string;
  code_challenge?: string;
  code_challenge_method?: string;
  state?: string;
  scope?: string;
  resource?: string | string[];
  response_type?: string;
}

export function authorizeUrl(base: string, p: AuthorizeParams): string {
  const url = new URL(`${base}/authorize`);
  const { resource, ...rest } = p;
  const values: Record<string, string | undefined> = {
    response_type: "code",
    redirect_uri: REDIRECT_URI,
    code_challenge_method: "S256",
    ...rest,
  };
  for (const [k, v] of Object.entries(values)) if (v !== undefined) url.searchParams.set(k, v);
  for (const r of [resource ?? []].flat()) url.searchParams.append("resource", r);
  return url.toString();
}

/**
 * Runs /authorize -> login (local user) -> consent (allow) and returns the redirect back to
 * the client. The browser keeps its cookies, so a second call reuses the session.
 */
export async function authorizeWithLocalLogin(
  base: string,
  browser: Browser,
  params: AuthorizeParams,
  login: { username: string; password: string },
): Promise<URL> {
  return followAuthorization(base, browser, authorizeUrl(base, params), login);
}

/**
 * Like authorizeWithLocalLogin, but starts from a ready-made authorization URL (one built by
 * a client library, say) and returns the redirect back to the client.
 */
export async function followAuthorization(
  base: string,
  browser: Browser,
  url: string,
  login: { username: string; password: string },
): Promise<URL> {
  let res = await browser.get(url);
  for (let hops = 0; hops < 6; hops++) {
    if (res.status === 302) {
      const location = new URL(res.headers.get("location") ?? "", base);
      if (location.origin !== new URL(base).origin) return location;
      res = await browser.get(location.toString());
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`unexpected ${res.status}: ${html.slice(0, 400)}`);
    // The form's own target: `/login`, or `/gw/login` under a public_url with a path.
    const action = /<form method="post" action="([^"]*\/(login|consent))"/.exec(html);
    const target = action ? new URL(action[1] as string, base).toString() : "";
    if (action?.[2] === "login") {
      res = await browser.postForm(target, {
        request: formField(html, "request"),
        csrf: formField(html, "csrf"),
        ...login,
      });
    } else if (action?.[2] === "consent") {
      res = await browser.postForm(target, {
        request: formField(html, "request"),
        csrf: formField(html, "csrf"),
        decision: "allow",
      });
    } else {
      throw new Error(`unexpected page: ${html.slice(0, 400)}`);
    }
  }
  throw new Error("too many steps in the authorization flow");
}

/**
 * A form POST to an OAuth endpoint at `url` (values may repeat), `basic` for a
 * client_secret_basic client (id and secret form-encoded first, RFC 6749 §2.3.1): the status,
 * the JSON body and the headers.
 */
export async function endpointPost(
  url: string,
  form: Record<string, string | string[]>,
  basic?: { id: string; secret: string },
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) for (const one of [v].flat()) body.append(k, one);
  // No keep-alive: restart tests must not reuse a socket of the previous server.
  const headers: Record<string, string> = {
    "content-type": "application/x-www-form-urlencoded",
    connection: "close",
  };
  if (basic)
    headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(basic.id)}:${encodeURIComponent(basic.secret)}`).toString("base64")}`;
  const res = await fetch(url, { method: "POST", headers, body });
  const text = await res.text();
  return {
    status: res.status,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    headers: res.headers,
  };
}

export function tokenRequest(
  base: string,
  form: Record<string, string | string[]>,
  basic?: { id: string; secret: string },
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  return endpointPost(`${base}/token`, form, basic);
}

export async function formPost(
  url: string,
  form: Record<string, string>,
  basic?: { id: string; secret: string },
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = {
    "content-type": "application/x-www-form-urlencoded",
    connection: "close",
  };
  if (basic) headers.authorization = `Basic ${Buffer.from(`${basic.id}:${basic.secret}`).toString("base64")}`;
  const res = await fetch(url, { method: "POST", headers, body: new URLSearchParams(form) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}
