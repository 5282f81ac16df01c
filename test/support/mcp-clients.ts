/**
 * Real MCP clients logging in the way a person would, for tests that run them against a
 * gateway: an OAuthClientProvider whose "user agent" is the test's browser (for the SDK's own
 * auth(), v1 or v2), and mcp-remote as a stdio proxy whose browser step the test completes by
 * following the URL it prints; and the SDK v2 client with a token in hand, in either era.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { Client as ClientV2, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import type { OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from "@modelcontextprotocol/sdk/shared/auth.js";
import { Browser, followAuthorization, REDIRECT_URI } from "./oauth-client.js";
import { freePort } from "./upstream.js";

const require = createRequire(import.meta.url);
const MCP_REMOTE = require.resolve("mcp-remote/dist/proxy.js");

export interface Login {
  username: string;
  password: string;
}

/** A public client (no secret) whose authorization step is the test's browser logging in as `login`. */
export class BrowserProvider implements OAuthClientProvider {
  info?: OAuthClientInformationMixed;
  saved?: OAuthTokens;
  verifier?: string;
  /** Where the login ended: the redirect URI with the code. */
  callback?: URL;
  private readonly browser = new Browser();
  constructor(
    private readonly base: string,
    private readonly login: Login,
    private readonly clientName: string,
  ) {}
  get redirectUrl() {
    return REDIRECT_URI;
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: this.clientName,
      redirect_uris: [REDIRECT_URI],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }
  async redirectToAuthorization(url: URL) {
    this.callback = await followAuthorization(this.base, this.browser, url.toString(), this.login);
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    if (!this.verifier) throw new Error("no verifier");
    return this.verifier;
  }
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
