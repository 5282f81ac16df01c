/**
 * `login`: the authorization code flow of a native app (RFC 8252) run by the SDK's `auth()`:
 * discovery, dynamic registration (first time), PKCE, the browser round trip to a loopback
 * receiver, the code exchange; the tokens land in the credentials file.
 */
import { randomBytes } from "node:crypto";
import { auth } from "@modelcontextprotocol/sdk/client/auth.js";
import { decodeJwt } from "jose";
import { type CredentialStore, serverKey } from "./credentials.js";
import { startLoopbackReceiver } from "./loopback.js";
import { CachedOAuthProvider } from "./provider.js";
import { revokeToken } from "./revoke.js";

export interface LoginOptions {
  store: CredentialStore;
  /** How long to wait for the browser to come back. */
  timeoutMs: number;
  /** Shows the authorization URL to the person (print it, open a browser). */
  onAuthorizationUrl(url: URL): void;
}

export interface LoginResult {
  /** The normalised server URL the tokens are cached under. */
  serverUrl: string;
  /** `preferred_username` from the access token, when it is a JWT that has one. */
  username?: string;
  scope?: string;
}

/** Runs the whole login for `serverUrl`; resolves once tokens are stored. */
export async function login(serverUrl: string, options: LoginOptions): Promise<LoginResult> {
  const url = serverKey(serverUrl);
  const { store } = options;
  const previous = store.get(url);
  const state = randomBytes(24).toString("base64url");
  const receiver = await startLoopbackReceiver({ state, timeoutMs: options.timeoutMs });
  const provider = new CachedOAuthProvider(store, url, {
    redirectUrl: receiver.redirectUrl,
    state,
    redirect: (authorizationUrl) => options.onAuthorizationUrl(authorizationUrl),
  });
  try {
    if ((await auth(provider, { serverUrl: url })) !== "REDIRECT") {
      throw new Error("the authorization server did not ask for a browser login");
    }
    const response = await receiver.result;
    checkIssuer(provider, response.iss);
    await auth(provider, { serverUrl: url, authorizationCode: response.code });
  } catch (err) {
    await provider.invalidateCredentials("verifier");
    throw err;
  } finally {
    await receiver.close();
  }
  const tokens = store.get(url)?.tokens;
  if (!tokens) throw new Error("the code exchange stored no tokens");
  await retire(url, previous, tokens.refresh_token);
  return { serverUrl: url, username: usernameOf(tokens.access_token), scope: tokens.scope };
}

/** RFC 9207: the redirect must come from the server we started with (mix-up defence). */
function checkIssuer(provider: CachedOAuthProvider, iss: string | undefined): void {
  const metadata = provider.discoveryState()?.authorizationServerMetadata;
  if (!metadata) return;
  if (iss === undefined) {
    const promised = (metadata as { authorization_response_iss_parameter_supported?: boolean })
      .authorization_response_iss_parameter_supported;
    if (promised === true) {
      throw new Error("the redirect carried no iss although the server promises one (RFC 9207)");
    }
    return;
  }
  if (iss !== metadata.issuer) {
    throw new Error(`the redirect came from issuer ${iss}, not ${metadata.issuer}: refusing it (RFC 9207)`);
  }
}

/** The login this one replaces ends at the server too, best effort. */
async function retire(
  serverUrl: string,
  previous: ReturnType<CredentialStore["get"]>,
  current: string | undefined,
): Promise<void> {
  const old = previous?.tokens?.refresh_token;
  if (!old || old === current || !previous?.client) return;
  await revokeToken(serverUrl, previous.client, old, "refresh_token").catch(() => undefined);
}

function usernameOf(accessToken: string): string | undefined {
  try {
    const claims = decodeJwt(accessToken);
    return typeof claims.preferred_username === "string" ? claims.preferred_username : claims.sub;
  } catch {
    return undefined; // An opaque token: nothing to read.
  }
}
