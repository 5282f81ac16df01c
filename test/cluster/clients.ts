/**
 * Real MCP clients for the cluster tests: the MCP SDK v2 client with its own OAuth (the test's
 * browser follows the login pages, through the load balancer like everything else) and its own
 * session handling, in the 2025 session era; and mcp-remote as a stdio proxy.
 */
import { Client, StreamableHTTPClientTransport, UnauthorizedError } from "@modelcontextprotocol/client";
import {
  connectMcpRemote as connectMcpRemoteAs,
  BrowserProvider as LoggingInProvider,
} from "../support/mcp-clients.js";
import { LOGIN } from "./cluster.js";

/** The SDK clients' provider, logging in as the cluster's user. */
export class BrowserProvider extends LoggingInProvider {
  constructor(base: string) {
    super(base, LOGIN, "cluster test");
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
export function connectMcpRemote(base: string, url: string, dir: string) {
  return connectMcpRemoteAs({ base, url, dir, login: LOGIN, clientName: "cluster-mcp-remote" });
}
