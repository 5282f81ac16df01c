/**
 * The client-side credentials: one JSON file per user (default
 * `~/.config/mcp-gateway/credentials.json`, or `$MCPGW_CLIENT_DIR/credentials.json`).
 *
 * - `clients` holds client registrations keyed by the issuer of the authorization server that
 *   issued them (RFC 6749 §2.2: a client id means something only to its issuer), so the
 *   services behind one authorization server share one registration, and a resource that
 *   moves to another authorization server gets a registration of its own there (SEP-2352).
 * - `servers` holds, per MCP server URL, the issuer its login is with and the tokens (with the
 *   access token's expiry as an absolute time). Tokens belong to one resource (RFC 8707), so
 *   they are never shared between URLs.
 *
 * Version 1 files (one entry per URL, the registration inline) are read and rewritten as
 * version 2 on the next change. The directory is 0700 and the file 0600; every write replaces
 * the file atomically (temp file, rename) under a lock, so concurrent processes never see half
 * a file.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { OAuthClientInformationMixed } from "@modelcontextprotocol/client";
import { z } from "zod";
import { FileLock } from "./file-lock.js";

/** Tokens as cached: the token response, with `expires_in` turned into an absolute time. */
export interface StoredTokens {
  access_token: string;
  token_type: string;
  refresh_token?: string;
  scope?: string;
  id_token?: string;
  /** The issuer of the authorization server that issued them. */
  issuer?: string;
  /** The client they were issued to, when it is not simply the issuer's (a device login's own). */
  client_id?: string;
  /** When the access token expires, in ms since the epoch; absent when the server did not say. */
  expires_at?: number;
}

/** A client registration, dynamic (RFC 7591) or made by hand (`login --client-id`). */
export type StoredClient = OAuthClientInformationMixed & {
  /** The issuer that knows this client (the SDK's SEP-2352 stamp). */
  issuer?: string;
  /** Registered by hand: never replaced by a dynamic registration, never dropped on its own. */
  pre_registered?: boolean;
  redirect_uris?: string[];
  /** RFC 7591 §3.2.1: what `logout` needs to delete the registration (RFC 7592 §2.3). */
  registration_access_token?: string;
  registration_client_uri?: string;
  token_endpoint_auth_method?: string;
};

/** What is cached for one MCP server URL. */
export interface ServerEntry {
  /** The issuer of the authorization server this URL's login is with. */
  issuer?: string;
  tokens?: StoredTokens;
  /**
   * A registration from a version 1 file, not yet bound to an issuer; or the one a device login
   * made for this URL (with its issuer), which a browser login cannot use (no redirect URIs).
   */
  client?: StoredClient;
}

interface CredentialsFile {
  version: 2;
  clients: Record<string, StoredClient>;
  servers: Record<string, ServerEntry>;
}

const FILE_NAME = "credentials.json";

/** The credentials directory's variable (outside the server's `MCP_GATEWAY_` namespace). */
export const CLIENT_DIR_VARIABLE = "MCPGW_CLIENT_DIR";
/** Its old name, still read by the client; `serve` treats `MCP_GATEWAY_*` as its own config. */
const DEPRECATED_CLIENT_DIR_VARIABLE = "MCP_GATEWAY_CLIENT_DIR";

const tokensSchema = z.looseObject({
  access_token: z.string(),
  token_type: z.string(),
  refresh_token: z.string().optional(),
  scope: z.string().optional(),
  issuer: z.string().optional(),
  expires_at: z.number().optional(),
});
const clientSchema = z.looseObject({ client_id: z.string(), issuer: z.string().optional() });
const v1Schema = z.object({
  version: z.literal(1),
  servers: z.record(
    z.string(),
    z.looseObject({ client: clientSchema.optional(), tokens: tokensSchema.optional() }),
  ),
});
const v2Schema = z.object({
  version: z.literal(2),
  clients: z.record(z.string(), clientSchema),
  servers: z.record(
    z.string(),
    z.looseObject({
      issuer: z.string().optional(),
      tokens: tokensSchema.optional(),
      client: clientSchema.optional(),
    }),
  ),
});

/** A version 1 file as version 2: registrations move under their issuer when it is known. */
function fromVersion1(file: z.infer<typeof v1Schema>): CredentialsFile {
  const next: CredentialsFile = { version: 2, clients: {}, servers: {} };
  for (const [url, entry] of Object.entries(file.servers)) {
    const tokens = entry.tokens as StoredTokens | undefined;
    const client = entry.client as StoredClient | undefined;
    const issuer = tokens?.issuer ?? client?.issuer;
    const server: ServerEntry = {};
    if (tokens) server.tokens = tokens;
    if (issuer) {
      server.issuer = issuer;
      if (client && !next.clients[issuer]) next.clients[issuer] = { ...client, issuer };
    } else if (client) {
      server.client = client;
    }
    if (Object.keys(server).length) next.servers[url] = server;
  }
  return next;
}

/**
 * Where credentials live: `$MCPGW_CLIENT_DIR`, else the deprecated `$MCP_GATEWAY_CLIENT_DIR`
 * (with a notice through `warn`), else `$XDG_CONFIG_HOME/mcp-gateway`, else `~/.config/mcp-gateway`.
 */
export function defaultClientDir(
  env: NodeJS.ProcessEnv = process.env,
  warn: (message: string) => void = () => undefined,
): string {
  if (env[CLIENT_DIR_VARIABLE]) return env[CLIENT_DIR_VARIABLE];
  const old = env[DEPRECATED_CLIENT_DIR_VARIABLE];
  if (old) {
    warn(
      `${DEPRECATED_CLIENT_DIR_VARIABLE} is deprecated (the gateway reads MCP_GATEWAY_* as its own settings); set ${CLIENT_DIR_VARIABLE} instead`,
    );
    return old;
  }
  return join(env.XDG_CONFIG_HOME || join(homedir(), ".config"), "mcp-gateway");
}

/** The cache key for a server URL: its normalised form, so `HTTP://Host:80/x` and `http://host/x` agree. */
export function serverKey(serverUrl: string | URL): string {
  let url: URL;
  try {
    url = new URL(serverUrl);
  } catch {
    throw new Error(`not a URL: ${String(serverUrl)}`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw new Error(`not an http(s) URL: ${url.href}`);
  url.hash = "";
  return url.href;
}

/** The credentials file of one user. */
export class CredentialStore {
  /** Absolute path of the JSON file. */
  readonly path: string;
  private readonly lock: FileLock;

  constructor(readonly dir: string = defaultClientDir()) {
    this.path = join(dir, FILE_NAME);
    this.lock = new FileLock(join(dir, `${FILE_NAME}.lock`));
  }

  /** The entry for `serverUrl`, read fresh from disk (another process may have refreshed). */
  get(serverUrl: string | URL): ServerEntry | undefined {
    return this.readFile().servers[serverKey(serverUrl)];
  }

  /** The registration the authorization server `issuer` knows, if any. */
  client(issuer: string): StoredClient | undefined {
    return this.readFile().clients[issuer];
  }

  /** All cached server URLs. */
  list(): string[] {
    return Object.keys(this.readFile().servers);
  }

  /** The server URLs whose login is with `issuer`, i.e. that use its registration. */
  serversWith(issuer: string): string[] {
    return Object.entries(this.readFile().servers)
      .filter(([, entry]) => (entry.issuer ?? entry.tokens?.issuer) === issuer)
      .map(([url]) => url);
  }

  /** Read-modify-write of one server entry under the lock; `change` returning undefined deletes it. */
  async update(
    serverUrl: string | URL,
    change: (entry: ServerEntry | undefined) => ServerEntry | undefined,
  ): Promise<void> {
    const key = serverKey(serverUrl);
    await this.change((file) => {
      const next = change(file.servers[key]);
      if (next && Object.keys(next).length) file.servers[key] = next;
      else delete file.servers[key];
    });
  }

  /** Read-modify-write of the registration at `issuer`; `change` returning undefined deletes it. */
  async updateClient(
    issuer: string,
    change: (client: StoredClient | undefined) => StoredClient | undefined,
  ): Promise<void> {
    await this.change((file) => {
      const next = change(file.clients[issuer]);
      if (next) file.clients[issuer] = next;
      else delete file.clients[issuer];
    });
  }

  /** Deletes the entry for `serverUrl` (registrations stay: other URLs may use them); true if there was one. */
  async remove(serverUrl: string | URL): Promise<boolean> {
    let existed = false;
    await this.update(serverUrl, (entry) => {
      existed = entry !== undefined;
      return undefined;
    });
    return existed;
  }

  /** Runs `fn` holding the cache lock (re-entrant: `update` inside `fn` does not wait). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.ensureDir();
    return this.lock.run(fn);
  }

  private change(mutate: (file: CredentialsFile) => void): Promise<void> {
    return this.exclusive(async () => {
      const file = this.readFile();
      mutate(file);
      this.writeFile(file);
    });
  }

  private ensureDir(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    // mkdir leaves an existing directory as it was; this one holds secrets.
    chmodSync(this.dir, 0o700);
  }

  private readFile(): CredentialsFile {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { version: 2, clients: {}, servers: {} };
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`${this.path} is not valid JSON; delete it and log in again`);
    }
    const current = v2Schema.safeParse(parsed);
    if (current.success) return current.data as CredentialsFile;
    const old = v1Schema.safeParse(parsed);
    if (old.success) return fromVersion1(old.data);
    throw new Error(`${this.path} is not a credentials file of this version; delete it and log in again`);
  }

  private writeFile(file: CredentialsFile): void {
    this.ensureDir();
    const temp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(temp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
    chmodSync(temp, 0o600);
    renameSync(temp, this.path);
  }
}
