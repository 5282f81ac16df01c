/**
 * The client-side token cache: one JSON file per user (default
 * `~/.config/mcp-gateway/credentials.json`, or `$MCP_GATEWAY_CLIENT_DIR/credentials.json`),
 * keyed by MCP server URL. Each entry holds the client registration, the tokens with the
 * access token's expiry, and the PKCE verifier only while a login is under way.
 *
 * The directory is 0700 and the file 0600; every write replaces the file atomically (write a
 * temp file, rename) under a lock, so concurrent processes never see half a file.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { OAuthClientInformationMixed } from "@modelcontextprotocol/sdk/shared/auth.js";
import { z } from "zod";
import { FileLock } from "./file-lock.js";

/** Tokens as cached: the token response, with `expires_in` turned into an absolute time. */
export interface StoredTokens {
  access_token: string;
  token_type: string;
  refresh_token?: string;
  scope?: string;
  id_token?: string;
  /** The authorization server that issued them (the SDK compares it before a refresh). */
  issuer?: string;
  /** When the access token expires, in ms since the epoch; absent when the server did not say. */
  expires_at?: number;
}

/** What is cached for one MCP server URL. */
export interface CredentialEntry {
  client?: OAuthClientInformationMixed;
  tokens?: StoredTokens;
  /** The PKCE verifier, kept only between the redirect and the code exchange of a login. */
  code_verifier?: string;
}

const FILE_NAME = "credentials.json";

const tokensSchema = z.looseObject({
  access_token: z.string(),
  token_type: z.string(),
  refresh_token: z.string().optional(),
  expires_at: z.number().optional(),
});
const entrySchema = z.looseObject({
  client: z.looseObject({ client_id: z.string() }).optional(),
  tokens: tokensSchema.optional(),
  code_verifier: z.string().optional(),
});
const fileSchema = z.object({ version: z.literal(1), servers: z.record(z.string(), entrySchema) });
type CredentialsFile = { version: 1; servers: Record<string, CredentialEntry> };

/** Where credentials live: `$MCP_GATEWAY_CLIENT_DIR`, else `$XDG_CONFIG_HOME/mcp-gateway`, else `~/.config/mcp-gateway`. */
export function defaultClientDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MCP_GATEWAY_CLIENT_DIR) return env.MCP_GATEWAY_CLIENT_DIR;
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
  get(serverUrl: string | URL): CredentialEntry | undefined {
    return this.readFile().servers[serverKey(serverUrl)];
  }

  /** All cached server URLs. */
  list(): string[] {
    return Object.keys(this.readFile().servers);
  }

  /** Read-modify-write of one entry under the lock; `change` returning undefined deletes it. */
  async update(
    serverUrl: string | URL,
    change: (entry: CredentialEntry | undefined) => CredentialEntry | undefined,
  ): Promise<void> {
    const key = serverKey(serverUrl);
    await this.exclusive(async () => {
      const file = this.readFile();
      const next = change(file.servers[key]);
      if (next) file.servers[key] = next;
      else delete file.servers[key];
      this.writeFile(file);
    });
  }

  /** Deletes the entry for `serverUrl`; true if there was one. */
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
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, servers: {} };
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`${this.path} is not valid JSON; delete it and log in again`);
    }
    const result = fileSchema.safeParse(parsed);
    if (!result.success) {
      throw new Error(`${this.path} is not a credentials file of this version; delete it and log in again`);
    }
    return result.data as CredentialsFile;
  }

  private writeFile(file: CredentialsFile): void {
    this.ensureDir();
    const temp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(temp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
    chmodSync(temp, 0o600);
    renameSync(temp, this.path);
  }
}
