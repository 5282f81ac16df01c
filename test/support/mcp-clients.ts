/**
 * Real MCP clients logging in the way a person would, for tests that run them against a
 * gateway: an OAuthClientProvider whose "user agent" is the test's browser (for the SDK's own
 * auth(), v1 or v2), and mcp-remote as a stdio proxy whose browser step the test completes by
 * following the URL it prints; a provider whose user agent is headless Chromium with a loopback
 * redirect listener (as a desktop client runs one); and the SDK v2 client with a token in hand,
 * in either era.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import {
  Client as ClientV2,
  StreamableHTTPClientTransport,
  UnauthorizedError as UnauthorizedV2,
} from "@modelcontextprotocol/client";
import {
  type OAuthClientProvider,
  UnauthorizedError as UnauthorizedV1,
} from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport as TransportV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from "@modelcontextprotocol/sdk/shared/auth.js";
import type { Browser as Chromium } from "playwright-core";
import { expect } from "vitest";
import { signInWithChromium } from "./chromium.js";
import { Browser, followAuthorization, REDIRECT_URI } from "./oauth-client.js";
import type { RedirectTarget } from "./redirect-target.js";
import { freePort } from "./upstream.js";

const require = createRequire(import.meta.url);
const MCP_REMOTE = require.resolve("mcp-remote/dist/proxy.js");

export interface Login {
  username: string;
  password: string;
}

/**
 * What every test provider keeps in memory: a public client (no secret) named `clientName`,
 * its registration, tokens, PKCE verifier and (SDK v2, SEP-2352) discovery state. Subclasses
 * say where the redirect goes and who plays the user agent.
 */
abstract class PublicClientProvider {
  info?: OAuthClientInformationMixed;
  saved?: OAuthTokens;
  verifier?: string;
  private discovery?: unknown;
  constructor(protected readonly clientName: string) {}
  abstract get redirectUrl(): string;
  abstract redirectToAuthorization(url: URL): Promise<void>;
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: this.clientName,
      redirect_uris: [this.redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed): void {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens): void {
    this.saved = tokens;
  }
  saveCodeVerifier(verifier: string): void {
    this.verifier = verifier;
  }
  codeVerifier(): string {
    if (!this.verifier) throw new Error("no code verifier saved");
    return this.verifier;
  }
  saveDiscoveryState(state: unknown): void {
    this.discovery = state;
  }
  discoveryState() {
    return this.discovery as never;
  }
}

/**
 * A public client whose authorization step is the test's cookie-jar browser logging in as
 * `login` at `base`; the redirect (with the code) is kept in `callback`, not followed.
 */
export class BrowserProvider extends PublicClientProvider implements OAuthClientProvider {
  /** Where the login ended: the redirect URI with the code. */
  callback?: URL;
  /** The authorization request the SDK built (what it asked for: scope, resource, PKCE). */
  authorizationUrl?: URL;
  private readonly browser = new Browser();
  constructor(
    private readonly base: string,
    private readonly login: Login,
    clientName: string,
  ) {
    super(clientName);
  }
  get redirectUrl() {
    return REDIRECT_URI;
  }
  async redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
    this.callback = await followAuthorization(this.base, this.browser, url.toString(), this.login);
  }
}

/**
 * A public client (the same provider shape in SDK v1 and v2) whose user agent is headless
 * Chromium signing in as `login`, and whose redirect URI is the loopback listener `target`, as
 * a desktop client runs one: the test reads the code from the listener and finishes the exchange.
 */
export class ChromiumProvider extends PublicClientProvider {
  constructor(
    private readonly browser: Chromium,
    private readonly target: { url: string },
    clientName: string,
    private readonly login: Login,
  ) {
    super(clientName);
  }
  get redirectUrl(): string {
    return this.target.url;
  }
  async redirectToAuthorization(url: URL): Promise<void> {
    await signInWithChromium(this.browser, url.toString(), this.login);
  }
}

/**
 * The SDK v1 client's first connect to the protected `url` with `provider`: refused with its
 * UnauthorizedError once discovery, registration and the sign-in in Chromium are done; the code
 * that arrived at `target` is exchanged with finishAuth (tokens in `provider.saved`). Returns
 * that redirect, for the test's checks of it (iss, state).
 */
export async function authorizeSdkV1(
  url: string,
  provider: ChromiumProvider,
  target: RedirectTarget,
  clientName: string,
): Promise<URL> {
  const first = new Client({ name: clientName, version: "1.0.0" });
  await expect(
    first.connect(new TransportV1(new URL(url), { authProvider: provider })),
  ).rejects.toBeInstanceOf(UnauthorizedV1);
  const back = await target.next();
  await new TransportV1(new URL(url), { authProvider: provider }).finishAuth(
    back.searchParams.get("code") as string,
  );
  return back;
}

/**
 * The same for the SDK v2 client, whose `connect` (built by the test with its own negotiation
 * options) must be refused with v2's UnauthorizedError; v2's finishAuth takes the whole
 * redirect and checks its RFC 9207 iss itself.
 */
export async function authorizeSdkV2(
  url: string,
  provider: ChromiumProvider,
  target: RedirectTarget,
  connect: () => Promise<ClientV2>,
): Promise<URL> {
  await expect(connect()).rejects.toBeInstanceOf(UnauthorizedV2);
  const back = await target.next();
  await new StreamableHTTPClientTransport(new URL(url), { authProvider: provider as never }).finishAuth(
    back.searchParams,
  );
  return back;
}

/**
 * mcp-remote as a stdio MCP server in front of `url`, connected to an SDK v1 client; the test
 * follows the authorization URL it prints (logging in as `login` at `base`) and calls the
 * redirect. `dir` is its HOME. A failure to connect carries what mcp-remote said.
 */
export async function connectMcpRemote(opts: {
  base: string;
  url: string;
  dir: string;
  login: Login;
  clientName: string;
}): Promise<{ client: Client; log(): string }> {
  const callbackPort = await freePort();
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [MCP_REMOTE, opts.url, String(callbackPort), "--host", "127.0.0.1"],
    env: {
      PATH: process.env.PATH ?? "",
      HOME: opts.dir,
      MCP_REMOTE_CONFIG_DIR: join(opts.dir, "mcp-remote"),
      // The opener runs `true` instead of a browser: the test is the browser.
      BROWSER: "true",
    },
    stderr: "pipe",
  });
  let err = "";
  let callback: Promise<void> | undefined;
  transport.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
    const authorize = /Please authorize this client by visiting:\s*(\S+)/.exec(err)?.[1];
    if (authorize && !callback) {
      callback = followAuthorization(opts.base, new Browser(), authorize, opts.login).then(
        async (redirect) => {
          await (await fetch(redirect)).text();
        },
      );
    }
  });
  const client = new Client({ name: opts.clientName, version: "1.0.0" });
  try {
    await client.connect(transport);
    await callback;
  } catch (e) {
    throw new Error(`${(e as Error).message}\nmcp-remote said:\n${err}`);
  }
  return { client, log: () => err };
}

/** The SDK v2 client's two ways to talk: 2025 sessions, and pinned 2026-07-28 (stateless). */
export const ERA_MODES = { legacy: "legacy", "pinned 2026-07-28": { pin: "2026-07-28" } } as const;
export type EraMode = (typeof ERA_MODES)[keyof typeof ERA_MODES];

/** An SDK v2 client connected to `url` in `mode`, sending `token` as its Bearer on every request. */
export async function connectWithToken(
  url: string,
  mode: EraMode,
  token: string,
  clientName: string,
): Promise<ClientV2> {
  const client = new ClientV2({ name: clientName, version: "1.0.0" }, { versionNegotiation: { mode } });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  return client;
}
