/**
 * A small but real OpenID Connect provider for tests, on loopback: discovery document, JWKS,
 * an auto-approving authorization endpoint, a token endpoint (client_secret_basic or _post,
 * PKCE S256, one-time codes) issuing ES256 id_tokens signed with jose, and userinfo.
 * `idTokenTamper` lets a test break one thing about the next id_tokens (audience, issuer,
 * nonce, expiry, signing key) to see that the relying party notices.
 *
 * Like Keycloak, it issues a refresh token with every code, rotated on each use (OIDC Core §12,
 * OAuth 2.1 §4.3): a refresh answers with the account's claims as they are now (`accounts`),
 * and refuses once the account is gone, as a provider does for a deleted or disabled user.
 * Userinfo, too, describes the account as it is now.
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";

export interface OidcTestProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Claims of the signed-in user (must include `sub`); id_token and userinfo both carry them. */
  user: Record<string, unknown> & { sub: string };
  /** Extra claims merged into (and overriding) the next id_tokens' claims. */
  idTokenTamper: JWTPayload;
  /** Sign id_tokens with a key that is not in the JWKS. */
  signWithUnknownKey: boolean;
  /** Extra members merged into the discovery document (e.g. a different `issuer`). */
  discoveryOverrides: Record<string, unknown>;
  /**
   * Every account that has signed in, by `sub`, as the provider knows it now: change one's
   * claims (groups) or delete it (a removed or disabled user), and refreshes and userinfo follow.
   */
  accounts: Map<string, Record<string, unknown> & { sub: string }>;
  /** Issue refresh tokens (default true); false is a provider that gives none. */
  issueRefreshTokens: boolean;
  /** Seconds an access token is good for (default 300). */
  accessTokenTtl: number;
  requests: string[];
  stop(): Promise<void>;
}

interface Pending {
  redirectUri: string;
  challenge: string;
  nonce?: string;
  scope: string;
  user: Record<string, unknown> & { sub: string };
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}

/** Starts the provider on 127.0.0.1 and an ephemeral port. */
export async function startOidcProvider(
  opts: { clientId?: string; clientSecret?: string } = {},
): Promise<OidcTestProvider> {
  const key = await generateKeyPair("ES256");
  const otherKey = await generateKeyPair("ES256");
  const jwk = { ...(await exportJWK(key.publicKey)), kid: "k1", alg: "ES256", use: "sig" };
  const codes = new Map<string, Pending>();
  /** access token -> the account it speaks for, and when it stops working (epoch s). */
  const accessTokens = new Map<string, { sub: string; exp: number }>();
  /** refresh token -> the account; used once, then replaced (rotation). */
  const refreshTokens = new Map<string, { sub: string; scope: string }>();

  const op: OidcTestProvider = {
    issuer: "",
    clientId: opts.clientId ?? "test-client",
    clientSecret: opts.clientSecret ?? randomBytes(16).toString("hex"),
    user: {
      sub: "u-1",
      preferred_username: "ada",
      name: "Ada Lovelace",
      email: "ada@example.com",
      email_verified: true,
    },
    idTokenTamper: {},
    signWithUnknownKey: false,
    discoveryOverrides: {},
    accounts: new Map(),
    issueRefreshTokens: true,
    accessTokenTtl: 300,
    requests: [],
    stop: async () => {},
  };

  function clientAuth(req: IncomingMessage, form: URLSearchParams): boolean {
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? "");
    if (basic?.[1]) {
      const [id, secret] = Buffer.from(basic[1], "base64")
        .toString()
        .split(":")
        .map((s) => decodeURIComponent(s.replace(/\+/g, " ")));
      return id === op.clientId && secret === op.clientSecret;
    }
    return form.get("client_id") === op.clientId && form.get("client_secret") === op.clientSecret;
  }

  async function idToken(claims: Record<string, unknown>, nonce?: string): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const payload: JWTPayload = { ...claims, ...(nonce ? { nonce } : {}), ...op.idTokenTamper };
    const signer = new SignJWT(payload)
      .setProtectedHeader({ alg: "ES256", kid: "k1" })
      .setIssuer(String(op.idTokenTamper.iss ?? op.issuer))
      .setAudience(op.idTokenTamper.aud ?? op.clientId)
      .setIssuedAt(now)
      .setExpirationTime(op.idTokenTamper.exp ?? now + 300);
    return signer.sign(op.signWithUnknownKey ? otherKey.privateKey : key.privateKey);
  }

  /** A token response for an account: access token, id_token, and a fresh refresh token. */
  async function tokenResponse(
    res: ServerResponse,
    claims: Record<string, unknown> & { sub: string },
    scope: string,
    nonce?: string,
  ) {
    const accessToken = randomBytes(24).toString("base64url");
    accessTokens.set(accessToken, {
      sub: claims.sub,
      exp: Math.floor(Date.now() / 1000) + op.accessTokenTtl,
    });
    const body: Record<string, unknown> = {
      access_token: accessToken,
      token_type: "Bearer",
      expires_in: op.accessTokenTtl,
      id_token: await idToken(claims, nonce),
    };
    if (op.issueRefreshTokens) {
      const refreshToken = randomBytes(24).toString("base64url");
      refreshTokens.set(refreshToken, { sub: claims.sub, scope });
      body.refresh_token = refreshToken;
    }
    json(res, 200, body);
  }

  async function token(req: IncomingMessage, res: ServerResponse) {
    const form = await readForm(req);
    if (!clientAuth(req, form))
      return json(res, 401, { error: "invalid_client", error_description: "client authentication failed" });
    if (form.get("grant_type") === "refresh_token") return refresh(res, form);
    const code = form.get("code") ?? "";
    const pending = codes.get(code);
    codes.delete(code);
    if (
      !pending ||
      form.get("grant_type") !== "authorization_code" ||
      form.get("redirect_uri") !== pending.redirectUri
    ) {
      return json(res, 400, {
        error: "invalid_grant",
        error_description: "the code is invalid, spent or expired",
      });
    }
    const verifier = form.get("code_verifier") ?? "";
    if (createHash("sha256").update(verifier).digest("base64url") !== pending.challenge) {
      return json(res, 400, { error: "invalid_grant", error_description: "PKCE verification failed" });
    }
    return tokenResponse(res, pending.user, pending.scope, pending.nonce);
  }

  /** grant_type=refresh_token (RFC 6749 §6): rotated; the account's claims as they are now. */
  async function refresh(res: ServerResponse, form: URLSearchParams) {
    const presented = form.get("refresh_token") ?? "";
    const grant = refreshTokens.get(presented);
    refreshTokens.delete(presented);
    const account = grant ? op.accounts.get(grant.sub) : undefined;
    if (!grant || !account) {
      return json(res, 400, {
        error: "invalid_grant",
        error_description: grant ? "the user is not active" : "the refresh token is invalid or spent",
      });
    }
    return tokenResponse(res, structuredClone(account), grant.scope);
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", op.issuer);
    op.requests.push(url.pathname);
    const route = `${req.method} ${url.pathname}`;
    const handle = async () => {
      switch (route) {
        case "GET /.well-known/openid-configuration":
          return json(res, 200, {
            issuer: op.issuer,
            authorization_endpoint: `${op.issuer}/authorize`,
            token_endpoint: `${op.issuer}/token`,
            jwks_uri: `${op.issuer}/jwks`,
            userinfo_endpoint: `${op.issuer}/userinfo`,
            response_types_supported: ["code"],
            subject_types_supported: ["public"],
            id_token_signing_alg_values_supported: ["ES256"],
            code_challenge_methods_supported: ["S256"],
            token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
            grant_types_supported: ["authorization_code", "refresh_token"],
            ...op.discoveryOverrides,
          });
        case "GET /jwks":
          return json(res, 200, { keys: [jwk] });
        case "GET /authorize": {
          const p = url.searchParams;
          const redirectUri = p.get("redirect_uri");
          if (p.get("client_id") !== op.clientId || !redirectUri)
            return json(res, 400, { error: "invalid_request" });
          const back = new URL(redirectUri);
          const state = p.get("state");
          if (state) back.searchParams.set("state", state);
          if (
            p.get("response_type") !== "code" ||
            p.get("code_challenge_method") !== "S256" ||
            !p.get("code_challenge")
          ) {
            back.searchParams.set("error", "invalid_request");
          } else {
            const code = randomBytes(16).toString("base64url");
            // Signing in registers (or refreshes) the account as the provider knows it.
            op.accounts.set(op.user.sub, structuredClone(op.user));
            codes.set(code, {
              redirectUri,
              challenge: p.get("code_challenge") ?? "",
              nonce: p.get("nonce") ?? undefined,
              scope: p.get("scope") ?? "",
              user: structuredClone(op.user),
            });
            back.searchParams.set("code", code);
          }
          res.writeHead(302, { location: back.toString() });
          return res.end();
        }
        case "POST /token":
          return token(req, res);
        case "GET /userinfo": {
          const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
          const access = bearer ? accessTokens.get(bearer) : undefined;
          const live = access && access.exp > Math.floor(Date.now() / 1000) ? access : undefined;
          const claims = live ? op.accounts.get(live.sub) : undefined;
          if (!claims) {
            res.writeHead(401, { "www-authenticate": 'Bearer error="invalid_token"' });
            return res.end();
          }
          return json(res, 200, claims);
        }
        default:
          return json(res, 404, { error: "not_found" });
      }
    };
    handle().catch((err: Error) => json(res, 500, { error: "server_error", error_description: err.message }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  op.issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  op.stop = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return op;
}
