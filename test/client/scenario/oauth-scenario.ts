/**
 * A scenario server for the client CLI tests: one origin on 127.0.0.1 that is an MCP resource
 * server (RFC 9728 metadata, bearer check, 401/403 challenges) in front of a real MCP server,
 * and one or more small authorization servers at path issuers (`/as1`, `/as2`; RFC 8414 §3
 * path-inserted metadata) that behave exactly as a case needs:
 *
 * - `/authorize` approves at once (no pages) and redirects with `code`, `state` and an `iss`
 *   that is right, missing, or any forged value; the metadata advertises RFC 9207 support or not;
 * - it grants all requested scopes, or what `grantScopes` lets through;
 * - `/token` does the code (PKCE S256 checked) and refresh grants with opaque tokens;
 *   `/revoke` (RFC 7009) ends a token or, for a refresh token, its whole grant;
 * - `/register` (RFC 7591) records every registration body; pre-registered clients can be added.
 *
 * The resource side requires `requiredScopes` for every request and `toolScopes[name]` for a
 * `tools/call` of that tool, answering 403 `insufficient_scope` with `scope=` otherwise.
 * `setAuthorizationServer()` moves the resource to another authorization server (SEP-2352).
 */
import { createHash, randomBytes } from "node:crypto";
import { type FetchHandler, json, serveFetch, type WebServer } from "./web-server.js";

export interface AuthorizationServerOptions {
  /** Advertise `authorization_response_iss_parameter_supported: true`. */
  advertiseIss?: boolean;
  /** The `iss` on the redirect: the issuer (default), none, or this exact string. */
  iss?: "issuer" | "omit" | { value: string };
  /** Which of the requested scopes are granted (default: all). */
  grantScopes?: (requested: string[]) => string[];
  scopesSupported?: string[];
  /** Access token lifetime (default 3600 s). */
  tokenTtlSeconds?: number;
}

export interface Registration {
  body: Record<string, unknown>;
  client_id: string;
}

interface Grant {
  clientId: string;
  scope: string[];
  resource?: string;
  alive: boolean;
}

interface Code {
  grant: Grant;
  challenge: string;
  redirectUri: string;
}

export class ScenarioAuthorizationServer {
  readonly registrations: Registration[] = [];
  readonly authorizeRequests: URLSearchParams[] = [];
  readonly tokenRequests: URLSearchParams[] = [];
  readonly clients = new Map<string, { secret?: string; redirectUris: string[] }>();
  private readonly codes = new Map<string, Code>();
  private readonly accessTokens = new Map<string, { grant: Grant; scope: string[]; alive: boolean }>();
  private readonly refreshTokens = new Map<string, Grant>();

  constructor(
    readonly issuer: string,
    readonly options: AuthorizationServerOptions,
  ) {}

  get metadata(): Record<string, unknown> {
    const o = this.issuer;
    return {
      issuer: o,
      authorization_endpoint: `${o}/authorize`,
      token_endpoint: `${o}/token`,
      registration_endpoint: `${o}/register`,
      revocation_endpoint: `${o}/revoke`,
      response_types_supported: ["code"],
      grant_types_supported: ["authorization_code", "refresh_token"],
      code_challenge_methods_supported: ["S256"],
      token_endpoint_auth_methods_supported: ["none", "client_secret_basic", "client_secret_post"],
      ...(this.options.scopesSupported && { scopes_supported: this.options.scopesSupported }),
      ...(this.options.advertiseIss && { authorization_response_iss_parameter_supported: true }),
    };
  }

  /** A client known without registration (`login --client-id`). */
  preRegister(clientId: string, secret?: string): void {
    this.clients.set(clientId, { secret, redirectUris: [] });
  }

  /** What a token grants, or undefined when it is unknown or dead. */
  scopeOf(accessToken: string): string[] | undefined {
    const token = this.accessTokens.get(accessToken);
    if (!token?.alive || !token.grant.alive) return undefined;
    return token.scope;
  }

  /** Ends one access token (as a revocation list would), leaving its grant alive. */
  killAccessToken(accessToken: string): void {
    const token = this.accessTokens.get(accessToken);
    if (token) token.alive = false;
  }

  /** Ends every grant: each access and refresh token dies. */
  killAllGrants(): void {
    for (const grant of this.refreshTokens.values()) grant.alive = false;
    for (const token of this.accessTokens.values()) token.grant.alive = false;
  }

  async handle(path: string, request: Request): Promise<Response> {
    switch (path) {
      case "/register":
        return this.register(request);
      case "/authorize":
        return this.authorize(new URL(request.url).searchParams);
      case "/token":
        return this.token(request);
      case "/revoke":
        return this.revoke(request);
      default:
        return json(404, { error: "not_found" });
    }
  }

  private async register(request: Request): Promise<Response> {
    const body = (await request.json()) as Record<string, unknown>;
    const clientId = `client-${randomBytes(6).toString("hex")}`;
    this.registrations.push({ body, client_id: clientId });
    const redirectUris = Array.isArray(body.redirect_uris) ? (body.redirect_uris as string[]) : [];
    this.clients.set(clientId, { redirectUris });
    return json(201, { ...body, client_id: clientId, client_id_issued_at: Math.floor(Date.now() / 1000) });
  }

  private authorize(params: URLSearchParams): Response {
    this.authorizeRequests.push(params);
    const clientId = params.get("client_id") ?? "";
    const redirectUri = params.get("redirect_uri") ?? "";
    if (!this.clients.has(clientId)) return json(400, { error: "invalid_client" });
    if (params.get("code_challenge_method") !== "S256") return json(400, { error: "invalid_request" });
    const requested = (params.get("scope") ?? "").split(" ").filter(Boolean);
    const scope = this.options.grantScopes ? this.options.grantScopes(requested) : requested;
    const code = randomBytes(16).toString("base64url");
    this.codes.set(code, {
      grant: { clientId, scope, resource: params.get("resource") ?? undefined, alive: true },
      challenge: params.get("code_challenge") ?? "",
      redirectUri,
    });
    const back = new URL(redirectUri);
    back.searchParams.set("code", code);
    const state = params.get("state");
    if (state !== null) back.searchParams.set("state", state);
    const iss = this.options.iss ?? "issuer";
    if (iss === "issuer") back.searchParams.set("iss", this.issuer);
    else if (iss !== "omit") back.searchParams.set("iss", iss.value);
    return new Response(null, { status: 302, headers: { location: back.href } });
  }

  private clientOf(request: Request, form: URLSearchParams): string | undefined {
    const basic = request.headers.get("authorization");
    let id = form.get("client_id") ?? undefined;
    let secret = form.get("client_secret") ?? undefined;
    if (basic?.startsWith("Basic ")) {
      const [u, p] = Buffer.from(basic.slice(6), "base64").toString().split(":");
      id = decodeURIComponent(u ?? "");
      secret = decodeURIComponent(p ?? "");
    }
    const known = id ? this.clients.get(id) : undefined;
    if (!known || (known.secret !== undefined && known.secret !== secret)) return undefined;
    return id;
  }

  private issue(grant: Grant, scope: string[]): Response {
    const accessToken = `at-${randomBytes(12).toString("hex")}`;
    const refreshToken = `rt-${randomBytes(12).toString("hex")}`;
    this.accessTokens.set(accessToken, { grant, scope, alive: true });
    this.refreshTokens.set(refreshToken, grant);
    return json(200, {
      access_token: accessToken,
      token_type: "Bearer",
      expires_in: this.options.tokenTtlSeconds ?? 3600,
      refresh_token: refreshToken,
      scope: scope.join(" "),
    });
  }

  private async token(request: Request): Promise<Response> {
    const form = new URLSearchParams(await request.text());
    this.tokenRequests.push(form);
    const clientId = this.clientOf(request, form);
    if (!clientId) return json(401, { error: "invalid_client" });
    if (form.get("grant_type") === "authorization_code") {
      const code = this.codes.get(form.get("code") ?? "");
      this.codes.delete(form.get("code") ?? "");
      const verifier = form.get("code_verifier") ?? "";
      const challenge = createHash("sha256").update(verifier).digest("base64url");
      if (!code || code.grant.clientId !== clientId || code.challenge !== challenge) {
        return json(400, { error: "invalid_grant" });
      }
      if (code.redirectUri !== form.get("redirect_uri")) return json(400, { error: "invalid_grant" });
      return this.issue(code.grant, code.grant.scope);
    }
    if (form.get("grant_type") === "refresh_token") {
      const presented = form.get("refresh_token") ?? "";
      const grant = this.refreshTokens.get(presented);
      if (!grant?.alive || grant.clientId !== clientId) return json(400, { error: "invalid_grant" });
      this.refreshTokens.delete(presented);
      return this.issue(grant, grant.scope);
    }
    return json(400, { error: "unsupported_grant_type" });
  }

  private async revoke(request: Request): Promise<Response> {
    const form = new URLSearchParams(await request.text());
    const token = form.get("token") ?? "";
    const grant = this.refreshTokens.get(token);
    if (grant) grant.alive = false;
    const access = this.accessTokens.get(token);
    if (access) access.alive = false;
    return new Response(null, { status: 200 });
  }
}

export interface ResourceOptions {
  /** Which authorization server protects the resource (default: the first). */
  authorizationServer?: string;
  /** Scopes every request needs. */
  requiredScopes?: string[];
  /** Extra scopes a `tools/call` of a tool needs. */
  toolScopes?: Record<string, string[]>;
  /** `scopes_supported` of the protected resource metadata. */
  scopesSupported?: string[];
}

export interface Scenario {
  origin: string;
  /** The MCP endpoint: `${origin}/mcp`. */
  mcpUrl: string;
  as: Record<string, ScenarioAuthorizationServer>;
  resource: ResourceOptions;
  /** Requests the MCP endpoint saw, with the scopes their token carried. */
  mcpRequests: Array<{ method: string; status: number; body?: unknown }>;
  setAuthorizationServer(name: string): void;
  close(): Promise<void>;
}

function challenge(origin: string, extra = ""): string {
  return `Bearer resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp"${extra}`;
}

/**
 * Starts a scenario: `servers` names the authorization servers (`{ as1: {...} }`), `mcp` is
 * the MCP server behind the resource (see mcp-servers.ts).
 */
export async function startScenario(
  servers: Record<string, AuthorizationServerOptions>,
  mcp: FetchHandler,
  resource: ResourceOptions = {},
): Promise<Scenario> {
  const as: Record<string, ScenarioAuthorizationServer> = {};
  const mcpRequests: Scenario["mcpRequests"] = [];
  let current = resource.authorizationServer ?? Object.keys(servers)[0] ?? "as1";
  let origin = "";

  const protectedResource = async (request: Request): Promise<Response> => {
    const auth = request.headers.get("authorization") ?? "";
    const token = auth.startsWith("Bearer ") ? auth.slice(7) : undefined;
    const bodyText = request.method === "POST" ? await request.clone().text() : "";
    let body: { method?: string; params?: { name?: string } } | undefined;
    try {
      body = bodyText ? JSON.parse(bodyText) : undefined;
    } catch {
      body = undefined;
    }
    const record = (status: number) =>
      mcpRequests.push({ method: body?.method ?? request.method, status, body });
    const granted = token ? as[current]?.scopeOf(token) : undefined;
    if (!granted) {
      record(401);
      return json(
        401,
        { error: token ? "invalid_token" : "unauthorized" },
        {
          "www-authenticate": challenge(origin, token ? ', error="invalid_token"' : ""),
        },
      );
    }
    const needed = [
      ...(resource.requiredScopes ?? []),
      ...(body?.method === "tools/call" ? (resource.toolScopes?.[body.params?.name ?? ""] ?? []) : []),
    ];
    const missing = needed.filter((s) => !granted.includes(s));
    if (missing.length > 0) {
      record(403);
      return json(
        403,
        { error: "insufficient_scope" },
        {
          "www-authenticate": challenge(origin, `, error="insufficient_scope", scope="${needed.join(" ")}"`),
        },
      );
    }
    const response = await mcp(request);
    record(response.status);
    return response;
  };

  const server: WebServer = await serveFetch(async (request) => {
    const url = new URL(request.url);
    const path = url.pathname;
    if (path === "/.well-known/oauth-protected-resource/mcp") {
      return json(200, {
        resource: `${origin}/mcp`,
        authorization_servers: [`${origin}/${current}`],
        ...(resource.scopesSupported && { scopes_supported: resource.scopesSupported }),
        bearer_methods_supported: ["header"],
      });
    }
    const metadataMatch = /^\/\.well-known\/oauth-authorization-server\/([^/]+)$/.exec(path);
    if (metadataMatch) {
      const found = as[metadataMatch[1] ?? ""];
      return found ? json(200, found.metadata) : json(404, { error: "not_found" });
    }
    if (path === "/mcp") return protectedResource(request);
    const asMatch = /^\/([^/]+)(\/[a-z]+)$/.exec(path);
    const target = asMatch ? as[asMatch[1] ?? ""] : undefined;
    if (target && asMatch?.[2]) return target.handle(asMatch[2], request);
    return new Response("<html><body>Not Found</body></html>", {
      status: 404,
      headers: { "content-type": "text/html" },
    });
  });
  origin = server.origin;
  for (const [name, options] of Object.entries(servers)) {
    as[name] = new ScenarioAuthorizationServer(`${origin}/${name}`, options);
  }
  return {
    origin,
    mcpUrl: `${origin}/mcp`,
    as,
    resource,
    mcpRequests,
    setAuthorizationServer(name: string) {
      current = name;
    },
    close: () => server.close(),
  };
}

/**
 * The browser of a person who approves at once: opens the authorization URL (the scenario AS
 * redirects straight back), then follows the redirect to the CLI's loopback receiver.
 */
export async function approveInBrowser(authorizationUrl: URL | string): Promise<Response> {
  const first = await fetch(authorizationUrl, { redirect: "manual" });
  const location = first.headers.get("location");
  if (first.status !== 302 || !location) {
    throw new Error(`the authorization server answered ${first.status}: ${await first.text()}`);
  }
  return fetch(location);
}
