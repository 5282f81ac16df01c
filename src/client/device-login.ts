/**
 * `login --device`: the device authorization grant (RFC 8628) for a machine with no browser (a
 * server, a container, an SSH session). The person opens a URL on any other device and types a
 * short code there; this process polls the token endpoint meanwhile.
 *
 * 1. As `login`: check that the URL is an OAuth-protected MCP server, discover its
 *    authorization server (RFC 9728, RFC 8414), which must advertise
 *    `device_authorization_endpoint`.
 * 2. A client for the grant: one registered by hand (`--client-id`), the issuer's kept
 *    registration if it was made for the grant, else a registration of its own (RFC 7591,
 *    public, `application_type: native`), kept with this server URL. It is never put in the
 *    issuer's place: a browser login's registration has redirect URIs this one lacks, and other
 *    URLs' tokens belong to that one.
 * 3. Ask for codes with the scope and the resource a browser login would ask for, show them,
 *    and poll at the interval, 5 s more after each slow_down (§3.5), until tokens, a denial or
 *    the codes' expiry. A server that cannot answer for a while (503, a restart) is waited out
 *    while the codes live: the person may be half way through the page. The tokens are kept as `login` keeps them, naming the client they were
 *    issued to (so a refresh presents that one).
 */
import {
  type AuthorizationServerMetadata,
  assertSecureTokenEndpoint,
  InsecureTokenEndpointError,
  type OAuthClientInformationMixed,
  RegistrationRejectedError,
  registerClient,
  selectClientAuthMethod,
} from "@modelcontextprotocol/client";
import { decodeJwt } from "jose";
import { clientOf, resourceOf } from "./access-token.js";
import { type CredentialStore, type StoredClient, type StoredTokens, serverKey } from "./credentials.js";
import type { LoginResult } from "./login.js";
import { bodyExcerpt, fetchNamingFailures, NetworkError, statusLine } from "./network.js";
import { CLIENT_NAME } from "./provider.js";
import { revokeToken } from "./revoke.js";
import { discoverLoginServer } from "./server-check.js";

export const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

/** RFC 8628 §3.5: the interval when the server names none, and what each slow_down adds. */
const DEFAULT_INTERVAL_SECONDS = 5;
const SLOW_DOWN_STEP_SECONDS = 5;

/** What the person needs: where to go, and what to type there. */
export interface DeviceCodePrompt {
  verificationUri: string;
  verificationUriComplete?: string;
  userCode: string;
  /** Seconds until the code expires. */
  expiresIn: number;
}

export interface DeviceLoginOptions {
  store: CredentialStore;
  /** Shows the code to the person. */
  onCode(prompt: DeviceCodePrompt): void | Promise<void>;
  /** Told when the server asks to poll less often (the new interval, in seconds). */
  onSlowDown?(intervalSeconds: number): void;
  /**
   * Told once per outage when a poll finds the authorization server unable to answer (a 503,
   * a gateway restarting): the login keeps polling until the code expires.
   */
  onUnavailable?(reason: string): void;
  scope?: string;
  /** A client registered by hand (for the device grant) at the authorization server. */
  client?: { clientId: string; clientSecret?: string };
  /** Waits between polls (tests of pace pass their own clock). */
  sleep?: (ms: number) => Promise<void>;
}

interface DeviceAuthorization {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete?: string;
  expires_in: number;
  interval?: number;
}

/** An OAuth error answer (RFC 6749 §5.2) of the device or token endpoint. */
class OAuthAnswer extends Error {
  constructor(
    readonly code: string,
    readonly description: string | undefined,
  ) {
    super(description ? `${code}: ${description}` : code);
  }
}

/**
 * The server could not answer this time (503 `temporarily_unavailable`, a 502/503/504 from a
 * proxy): worth asking again, after `retryAfter` seconds if it said.
 */
class ServerUnavailable extends Error {
  constructor(
    message: string,
    readonly retryAfter: number | undefined,
  ) {
    super(message);
  }
}

const RETRYABLE_STATUS = new Set([502, 503, 504]);

/** Retry-After in seconds (RFC 9110 §10.2.3, the delay form; a date is ignored). */
function retryAfterOf(res: Response): number | undefined {
  const value = Number(res.headers.get("retry-after"));
  return Number.isInteger(value) && value > 0 ? value : undefined;
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs the whole device login for `serverUrl`; resolves once tokens are stored. */
export async function deviceLogin(serverUrl: string, options: DeviceLoginOptions): Promise<LoginResult> {
  const url = serverKey(serverUrl);
  const { store } = options;
  const { challenge, server, metadata, issuer } = await discoverLoginServer(url);
  const endpoints = deviceEndpoints(metadata, issuer);
  const client = await deviceClient(url, issuer, server.authorizationServerUrl, metadata, options);
  const previous = store.get(url);

  const form: Record<string, string> = {};
  const scope = options.scope ?? challenge.scope;
  if (scope) form.scope = scope;
  const resource = resourceOf(url, server);
  if (resource) form.resource = resource;
  const codes = (await post(endpoints.device, form, client, metadata)) as unknown as DeviceAuthorization;
  if (
    typeof codes.device_code !== "string" ||
    typeof codes.user_code !== "string" ||
    !codes.verification_uri
  ) {
    throw new Error(`${endpoints.device} answered without a device_code, user_code and verification_uri`);
  }
  await options.onCode({
    verificationUri: codes.verification_uri,
    verificationUriComplete: codes.verification_uri_complete,
    userCode: codes.user_code,
    expiresIn: codes.expires_in,
  });

  const tokens = await poll(endpoints.token, codes, client, metadata, options);
  const stored: StoredTokens = {
    access_token: tokens.access_token as string,
    token_type: (tokens.token_type as string | undefined) ?? "Bearer",
    ...(typeof tokens.refresh_token === "string" && { refresh_token: tokens.refresh_token }),
    ...(typeof tokens.scope === "string" && { scope: tokens.scope }),
    ...(typeof tokens.expires_in === "number" && { expires_at: Date.now() + tokens.expires_in * 1000 }),
    issuer,
    client_id: client.client_id,
  };
  await store.update(url, (entry) => ({ ...entry, issuer, tokens: stored }));
  await retire(url, previous, issuer, store, stored.refresh_token);
  return { serverUrl: url, issuer, username: usernameOf(stored.access_token), scope: stored.scope };
}

/** The device and token endpoints, which must be https (or loopback) to be sent credentials. */
function deviceEndpoints(
  metadata: AuthorizationServerMetadata | undefined,
  issuer: string,
): { device: string; token: string } {
  const device = (metadata as { device_authorization_endpoint?: unknown } | undefined)
    ?.device_authorization_endpoint;
  if (typeof device !== "string" || !metadata?.token_endpoint) {
    throw new Error(
      `the authorization server ${issuer} does not offer the device grant (its metadata has no device_authorization_endpoint); log in with a browser instead`,
    );
  }
  try {
    assertSecureTokenEndpoint(device);
    assertSecureTokenEndpoint(metadata.token_endpoint);
  } catch (err) {
    if (err instanceof InsecureTokenEndpointError)
      throw new Error(`refusing to send credentials to ${err.tokenEndpoint}: not https (and not loopback)`);
    throw err;
  }
  return { device, token: metadata.token_endpoint };
}

const forDevices = (client: StoredClient | undefined): client is StoredClient =>
  Boolean(client && (client as { grant_types?: string[] }).grant_types?.includes(DEVICE_CODE_GRANT));

/** The client to log in with (see the module comment), registering one if need be. */
async function deviceClient(
  url: string,
  issuer: string,
  authorizationServerUrl: string,
  metadata: AuthorizationServerMetadata | undefined,
  options: DeviceLoginOptions,
): Promise<StoredClient> {
  const { store } = options;
  if (options.client) {
    const { clientId, clientSecret } = options.client;
    const client: StoredClient = {
      client_id: clientId,
      ...(clientSecret ? { client_secret: clientSecret } : { token_endpoint_auth_method: "none" }),
      issuer,
      pre_registered: true,
    };
    await store.updateClient(issuer, () => client);
    return client;
  }
  const kept = store.client(issuer);
  if (forDevices(kept)) return kept;
  const own = store.get(url)?.client;
  if (forDevices(own) && own.issuer === issuer) return own;
  if (!metadata?.registration_endpoint) {
    throw new Error(
      `${issuer} offers no dynamic registration: register a client for the device grant there and pass --client-id`,
    );
  }
  let registered: OAuthClientInformationMixed;
  try {
    registered = await registerClient(authorizationServerUrl, {
      metadata,
      clientMetadata: {
        client_name: CLIENT_NAME,
        redirect_uris: [],
        grant_types: [DEVICE_CODE_GRANT, "refresh_token"],
        response_types: [],
        // A CLI on someone's machine cannot keep a secret; the device code is its proof.
        token_endpoint_auth_method: "none",
        application_type: "native",
      },
      fetchFn: fetchNamingFailures,
    });
  } catch (err) {
    if (err instanceof RegistrationRejectedError) {
      const excerpt = bodyExcerpt(err.body);
      throw new Error(
        `the authorization server refused to register this client (HTTP ${err.status}${excerpt ? `: ${excerpt}` : ""})`,
      );
    }
    throw err;
  }
  const { registration_access_token: _unkept, ...rest } = registered as StoredClient & {
    registration_access_token?: string;
  };
  const client: StoredClient = { ...rest, issuer };
  await store.update(url, (entry) => ({ ...entry, client }));
  return client;
}

/**
 * A form POST with the client's authentication (RFC 6749 §2.3.1: Basic or in the body, as the
 * server supports; a public client sends its id). Resolves with the JSON of a 200; an OAuth
 * error answer throws OAuthAnswer.
 */
async function post(
  endpoint: string,
  form: Record<string, string>,
  client: StoredClient,
  metadata: AuthorizationServerMetadata | undefined,
): Promise<Record<string, unknown>> {
  const body = new URLSearchParams(form);
  const headers: Record<string, string> = {
    "content-type": "application/x-www-form-urlencoded",
    accept: "application/json",
  };
  const method = selectClientAuthMethod(client, metadata?.token_endpoint_auth_methods_supported ?? []);
  if (method === "client_secret_basic" && client.client_secret) {
    const pair = `${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`;
    headers.authorization = `Basic ${Buffer.from(pair).toString("base64")}`;
  } else {
    body.set("client_id", client.client_id);
    if (method === "client_secret_post" && client.client_secret)
      body.set("client_secret", client.client_secret);
  }
  const res = await fetchNamingFailures(endpoint, { method: "POST", headers, body });
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  if (res.ok && json) return json;
  const description = typeof json?.error_description === "string" ? json.error_description : undefined;
  if (json?.error === "temporarily_unavailable" || (RETRYABLE_STATUS.has(res.status) && !json?.error)) {
    const why = description ?? `${endpoint} answered ${statusLine(res)}`;
    throw new ServerUnavailable(why, retryAfterOf(res));
  }
  if (json && typeof json.error === "string") {
    throw new OAuthAnswer(
      json.error,
      typeof json.error_description === "string" ? json.error_description : undefined,
    );
  }
  const excerpt = bodyExcerpt(text);
  throw new Error(`${endpoint} answered ${statusLine(res)}${excerpt ? ` (${excerpt})` : ""}`);
}

/** Polls until tokens (RFC 8628 §3.4, §3.5); throws on a denial, the expiry or any other refusal. */
async function poll(
  tokenEndpoint: string,
  codes: DeviceAuthorization,
  client: StoredClient,
  metadata: AuthorizationServerMetadata | undefined,
  options: DeviceLoginOptions,
): Promise<Record<string, unknown>> {
  const sleep = options.sleep ?? pause;
  let interval = codes.interval ?? DEFAULT_INTERVAL_SECONDS;
  const deadline = Date.now() + codes.expires_in * 1000;
  /** Set while the server cannot answer: the wait it asked for, if longer than the interval. */
  let outage: { wait: number } | undefined;
  for (;;) {
    await sleep(Math.max(interval, outage?.wait ?? 0) * 1000);
    try {
      const tokens = await post(
        tokenEndpoint,
        { grant_type: DEVICE_CODE_GRANT, device_code: codes.device_code },
        client,
        metadata,
      );
      if (typeof tokens.access_token !== "string")
        throw new Error(`${tokenEndpoint} answered without an access token`);
      return tokens;
    } catch (err) {
      // An outage (or a restart) on the way is waited out, as long as the code lives.
      if (err instanceof ServerUnavailable || err instanceof NetworkError) {
        if (Date.now() >= deadline) throw expired();
        if (!outage) options.onUnavailable?.(err.message);
        outage = { wait: err instanceof ServerUnavailable ? (err.retryAfter ?? 0) : 0 };
        continue;
      }
      outage = undefined;
      if (!(err instanceof OAuthAnswer)) throw err;
      if (err.code === "authorization_pending") {
        if (Date.now() >= deadline) throw expired();
        continue;
      }
      if (err.code === "slow_down") {
        interval += SLOW_DOWN_STEP_SECONDS;
        options.onSlowDown?.(interval);
        continue;
      }
      if (err.code === "access_denied") throw new Error("the sign-in was denied on the device page");
      if (err.code === "expired_token") throw expired();
      throw new Error(`the authorization server refused: ${err.message}`);
    }
  }
}

const expired = () =>
  new Error("the code expired before the sign-in was approved; run the login again for a new code");

/** The login this one replaces ends at the server too, best effort (same server only). */
async function retire(
  url: string,
  previous: ReturnType<CredentialStore["get"]>,
  issuer: string,
  store: CredentialStore,
  current: string | undefined,
): Promise<void> {
  const old = previous?.tokens?.refresh_token;
  const previousIssuer = previous?.issuer ?? previous?.tokens?.issuer;
  if (!old || old === current || (previousIssuer && previousIssuer !== issuer) || !previous) return;
  const client = clientOf(store, previous, issuer);
  if (!client) return;
  await revokeToken(url, client, old, "refresh_token").catch(() => undefined);
}

function usernameOf(accessToken: string): string | undefined {
  try {
    const claims = decodeJwt(accessToken);
    return typeof claims.preferred_username === "string" ? claims.preferred_username : claims.sub;
  } catch {
    return undefined;
  }
}
