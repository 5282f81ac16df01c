/**
 * Real MCP clients for the cluster tests: the MCP SDK v2 client with its own OAuth (the test's
 * browser follows the login pages, through the load balancer like everything else) and its own
 * session handling, in the 2025 session era; and mcp-remote as a stdio proxy.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { Client, StreamableHTTPClientTransport, UnauthorizedError } from "@modelcontextprotocol/client";
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { Browser, followAuthorization, REDIRECT_URI } from "../support/oauth-client.js";
import { freePort } from "../support/upstream.js";
import { LOGIN } from "./cluster.js";

const require = createRequire(import.meta.url);
const MCP_REMOTE = require.resolve("mcp-remote/dist/proxy.js");

interface Tokens {
  access_token: string;
  refresh_token?: string;
  [key: string]: unknown;
}

/** An OAuthClientProvider whose "user agent" is the test's browser. */
export class BrowserProvider {
  info?: Record<string, unknown>;
  saved?: Tokens;
  verifier?: string;
  callback?: URL;
  private readonly browser = new Browser();
  constructor(private readonly base: string) {}
  get redirectUrl() {
    return REDIRECT_URI;
  }
  get clientMetadata() {
    return {
      client_name: "cluster test",
      redirect_uris: [REDIRECT_URI],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: Record<string, unknown>) {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: Tokens) {
    this.saved = tokens;
  }
  async redirectToAuthorization(url: URL) {
    this.callback = await followAuthorization(this.base, this.browser, url.toString(), LOGIN);
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    if (!this.verifier) throw new Error("no verifier");
    return this.verifier;
  }
}

export interface Connected {
  client: Client;
  transport: StreamableHTTPClientTransport;
  sessionId: string;
}

/** Connects an SDK v2 client (2025 sessions) to `url`, logging in first when the provider has no token. */
export async function connectV2(url: string, provider: BrowserProvider): Promise<Connected> {
  const connect = async () => {
    const client = new Client(
      { name: "cluster-v2", version: "2.0.0" },
      { versionNegotiation: { mode: "legacy" } },
    );
    const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider as never });
    await client.connect(transport);
    return { client, transport, sessionId: transport.sessionId as string };
  };
  if (provider.saved) return connect();
  await connect().then(
    () => {
      throw new Error("connected without logging in");
    },
    (err: unknown) => {
      if (!(err instanceof UnauthorizedError)) throw err;
    },
  );
  const back = provider.callback;
  if (!back) throw new Error("the client did not go through the login");
  await new StreamableHTTPClientTransport(new URL(url), { authProvider: provider as never }).finishAuth(
    back.searchParams,
  );
  return connect();
}

/** The JSON a counter-server tool answered with. */
export function toolJson<T = Record<string, unknown>>(result: unknown): T {
  const text = (result as { content: Array<{ text: string }> }).content[0]?.text ?? "{}";
  return JSON.parse(text) as T;
}

/** mcp-remote as a stdio MCP server in front of `url`; the test completes its browser step. */
export async function connectMcpRemote(
  base: string,
  url: string,
  dir: string,
): Promise<{ client: ClientV1; log(): string }> {
  const callbackPort = await freePort();
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [MCP_REMOTE, url, String(callbackPort), "--host", "127.0.0.1"],
    env: {
      PATH: process.env.PATH ?? "",
      HOME: dir,
      MCP_REMOTE_CONFIG_DIR: join(dir, "mcp-remote"),
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
      callback = followAuthorization(base, new Browser(), authorize, LOGIN).then(async (redirect) => {
        await (await fetch(redirect)).text();
      });
    }
  });
  const client = new ClientV1({ name: "cluster-mcp-remote", version: "1.0.0" });
  try {
    await client.connect(transport);
    await callback;
  } catch (e) {
    throw new Error(`${(e as Error).message}\nmcp-remote said:\n${err}`);
  }
  return { client, log: () => err };
}
