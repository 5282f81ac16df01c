/**
 * `mcp-gateway admin …`: users, clients, tokens (grants), signing keys and backups, working on
 * the configured store directly (a running gateway sees the changes: revocations within the
 * revocation cache bound, new keys within a minute).
 */
import { readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { ResourceIndex } from "../config/resources.js";
import type { GatewayConfig } from "../config/schema.js";
import {
  type EncryptionSecret,
  resolveEncryptionSecret,
  SECRET_FILE,
  secretFilePath,
} from "../crypto/encryption-secret.js";
import { type SealedJwk, unsealJwk } from "../crypto/sealing.js";
import { newSecret } from "../crypto/secrets.js";
import { LocalUserError, LocalUsers } from "../idp/local.js";
import { ClientStore } from "../oauth/clients.js";
import { GrantStore } from "../oauth/grant-store.js";
import { KeyRing } from "../oauth/keys.js";
import { Revoker } from "../oauth/revoker.js";
import { NO_AUDIT } from "../ops/audit.js";
import { openStore } from "../store/open.js";
import type { Store } from "../store/store.js";
import { Revocations } from "../tokens/revocations.js";
import { configOrExit } from "./load-config.js";

/** Namespaces worth a backup: durable state. Codes, sessions and pending logins are transient. */
const BACKUP_NAMESPACES = [
  "users",
  "clients",
  "keys",
  "grants",
  "refresh_family",
  "refresh_rotated",
  "consents",
  "revoked",
];

type Opts = { config?: string };

async function withStore<T>(opts: Opts, fn: (store: Store, config: GatewayConfig) => Promise<T>): Promise<T> {
  // What serve sees, the built-in services included: their resource URLs name grants' services.
  const { config } = await configOrExit({ file: opts.config, builtins: true });
  const store = await openStore(config);
  try {
    return await fn(store, config);
  } finally {
    await store.close();
  }
}

const grantsOf = (store: Store, config: GatewayConfig) =>
  new GrantStore(store, { code: config.tokens.code_ttl, refresh: config.tokens.refresh_ttl });

/** The CLI prints what it did; the audit trail of admin actions is the shell's. */
const revokerFor = (store: Store, config: GatewayConfig) =>
  new Revoker(store, new Revocations(store, 0, config.tokens.refresh_ttl), grantsOf(store, config), NO_AUDIT);

function print(rows: Array<Record<string, unknown>>): void {
  if (rows.length === 0) {
    process.stdout.write("(none)\n");
    return;
  }
  for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`);
}

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

async function readPassword(fromStdin: boolean): Promise<{ password: string; generated: boolean }> {
  if (!fromStdin) return { password: newSecret(18), generated: true };
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return {
    password: Buffer.concat(chunks)
      .toString("utf8")
      .replace(/\r?\n$/, ""),
    generated: false,
  };
}

function registerUsers(admin: Command): void {
  const users = admin.command("users").description("local accounts (idp.type local)");
  users
    .command("add <name>")
    .description("add a user; prints a generated password unless --password-stdin")
    .option("--email <email>")
    .option("--password-stdin", "read the password from standard input")
    .option("-c, --config <file>")
    .action((name: string, opts: Opts & { email?: string; passwordStdin?: boolean }) =>
      withStore(opts, async (store) => {
        const { password, generated } = await readPassword(Boolean(opts.passwordStdin));
        try {
          await new LocalUsers(store).add(name, password, opts.email);
        } catch (err) {
          if (err instanceof LocalUserError) fail(err.message);
          throw err;
        }
        process.stdout.write(generated ? `added ${name} with password ${password}\n` : `added ${name}\n`);
      }),
    );
  users
    .command("passwd <name>")
    .description("set a new password; prints a generated one unless --password-stdin")
    .option("--password-stdin")
    .option("-c, --config <file>")
    .action((name: string, opts: Opts & { passwordStdin?: boolean }) =>
      withStore(opts, async (store) => {
        const { password, generated } = await readPassword(Boolean(opts.passwordStdin));
        try {
          await new LocalUsers(store).setPassword(name, password);
        } catch (err) {
          if (err instanceof LocalUserError) fail(err.message);
          throw err;
        }
        process.stdout.write(
          generated ? `new password for ${name}: ${password}\n` : `password changed for ${name}\n`,
        );
      }),
    );
  users
    .command("list")
    .option("-c, --config <file>")
    .action((opts: Opts) => withStore(opts, async (store) => print(await new LocalUsers(store).list())));
  users
    .command("remove <name>")
    .description("remove a user and revoke every token issued to them")
    .option("-c, --config <file>")
    .action((name: string, opts: Opts) =>
      withStore(opts, async (store, config) => {
        const users = new LocalUsers(store);
        // Their tokens' subject is the name as it was added (src/idp/local.ts), whatever case is typed here.
        const user = await users.get(name);
        if (!user || !(await users.remove(name))) fail(`no such user: ${name}`);
        await revokerFor(store, config).revokeUser(user.name);
        process.stdout.write(`removed ${name}\n`);
      }),
    );
}

function registerClients(admin: Command): void {
  const clients = admin.command("clients").description("registered OAuth clients");
  clients
    .command("list")
    .option("-c, --config <file>")
    .action((opts: Opts) =>
      withStore(opts, async (store) =>
        print(
          (await new ClientStore(store).list()).map((c) => ({
            client_id: c.client_id,
            client_name: c.client_name,
            redirect_uris: c.redirect_uris,
            auth: c.token_endpoint_auth_method,
            issued: new Date(c.client_id_issued_at * 1000).toISOString(),
            expires: c.client_secret_expires_at
              ? new Date(c.client_secret_expires_at * 1000).toISOString()
              : "never",
          })),
        ),
      ),
    );
  clients
    .command("delete <clientId>")
    .description("delete a client and revoke every token it holds")
    .option("-c, --config <file>")
    .action((clientId: string, opts: Opts) =>
      withStore(opts, async (store, config) => {
        if (!(await new ClientStore(store).delete(clientId))) fail(`no such client: ${clientId}`);
        await revokerFor(store, config).revokeClient(clientId);
        process.stdout.write(`deleted ${clientId}\n`);
      }),
    );
}

function registerTokens(admin: Command): void {
  const tokens = admin.command("tokens").description("grants: one per login of a user into a client");
  tokens
    .command("list")
    .option("-c, --config <file>")
    .action((opts: Opts) =>
      withStore(opts, async (store, config) => {
        const grants = grantsOf(store, config);
        const resources = new ResourceIndex(config);
        print(
          (await grants.listGrants()).map((g) => ({
            grant: g.sid,
            user: g.user.login,
            client_id: g.client_id,
            services: g.resources.map((r) => resources.serviceFor(r) ?? r),
            scope: g.scope.join(" "),
            since: new Date(g.created_at * 1000).toISOString(),
          })),
        );
      }),
    );
  tokens
    .command("revoke <grant>")
    .description("revoke a grant: its refresh token and every access token issued from it")
    .option("-c, --config <file>")
    .action((sid: string, opts: Opts) =>
      withStore(opts, async (store, config) => {
        const existed = (await grantsOf(store, config).getGrant(sid)) !== undefined;
        await revokerFor(store, config).endGrant(sid, "admin");
        process.stdout.write(existed ? `revoked ${sid}\n` : `no live grant ${sid}; marked revoked anyway\n`);
      }),
    );
}

function registerKeys(admin: Command): void {
  const keys = admin.command("keys").description("access token signing keys");
  // The same secret `serve` seals with (configured, or {data_dir}/secret).
  const open = (store: Store, config: GatewayConfig) => {
    const secret = resolveEncryptionSecret(config);
    return KeyRing.open(store, {
      alg: config.tokens.signing_alg,
      accessTtlSeconds: config.tokens.access_ttl,
      encryptionSecret: secret.value,
      secretSource: secret.source,
    });
  };
  keys
    .command("list")
    .option("-c, --config <file>")
    .action((opts: Opts) =>
      withStore(opts, async (store, config) => {
        const ring = await open(store, config);
        print(ring.describe().map((k) => ({ ...k, createdAt: new Date(k.createdAt).toISOString() })));
        ring.close();
      }),
    );
  keys
    .command("rotate")
    .description("add a signing key; older keys stay published until their tokens expire")
    .option("-c, --config <file>")
    .action((opts: Opts) =>
      withStore(opts, async (store, config) => {
        const ring = await open(store, config);
        const kid = await ring.rotate();
        ring.close();
        process.stdout.write(`new signing key ${kid}\n`);
      }),
    );
}

interface Backup {
  format: "mcp-oauth-gateway-backup";
  version: 1;
  created_at: string;
  entries: Array<{ ns: string; key: string; value: unknown; expires_at?: number }>;
}

function registerBackup(admin: Command): void {
  admin
    .command("backup <file>")
    .description(
      "write users, clients, keys, grants and revocations to a JSON file (it holds private keys: protect it)",
    )
    .option("-c, --config <file>")
    .action((file: string, opts: Opts) =>
      withStore(opts, async (store) => {
        const backup: Backup = {
          format: "mcp-oauth-gateway-backup",
          version: 1,
          created_at: new Date().toISOString(),
          entries: [],
        };
        for (const ns of BACKUP_NAMESPACES) {
          for (const e of await store.list(ns))
            backup.entries.push({ ns, key: e.key, value: e.value, expires_at: e.expiresAt });
        }
        writeFileSync(file, JSON.stringify(backup), { mode: 0o600 });
        process.stdout.write(`wrote ${backup.entries.length} entries to ${file}\n`);
      }),
    );
  admin
    .command("restore <file>")
    .description("load a backup into the configured store (entries already expired are skipped)")
    .option("-c, --config <file>")
    .action((file: string, opts: Opts) =>
      withStore(opts, async (store, config) => {
        let backup: Backup;
        try {
          backup = JSON.parse(readFileSync(file, "utf8")) as Backup;
        } catch (err) {
          fail(`cannot read backup ${file}: ${(err as Error).message}`);
        }
        if (backup.format !== "mcp-oauth-gateway-backup" || !Array.isArray(backup.entries))
          fail(`${file} is not a gateway backup`);
        checkSecretOpens(backup, config);
        let restored = 0;
        for (const e of backup.entries) {
          if (!BACKUP_NAMESPACES.includes(e.ns)) continue;
          const ttl = e.expires_at ? Math.floor((e.expires_at - Date.now()) / 1000) : undefined;
          if (ttl !== undefined && ttl <= 0) continue;
          await store.put(e.ns, e.key, e.value as never, ttl);
          restored++;
        }
        process.stdout.write(`restored ${restored} entries from ${file}\n`);
      }),
    );
}

/**
 * A backup's signing keys are sealed: restored where the secret differs, the gateway could not
 * start. Checked before anything is written (one unseal of one key).
 */
function checkSecretOpens(backup: Backup, config: GatewayConfig): void {
  const sealed = backup.entries.find((e) => e.ns === "keys" && (e.value as KeyEntry | null)?.private_sealed);
  if (!sealed) return;
  const copyIt = `copy the source's ${SECRET_FILE} (in its data_dir) to ${secretFilePath(config)}, or set keys.encryption_secret to the secret the keys were sealed with`;
  let secret: EncryptionSecret | undefined;
  try {
    secret = resolveEncryptionSecret(config, { generate: false });
  } catch (err) {
    fail((err as Error).message);
  }
  if (!secret) fail(`the backup's signing keys are sealed: ${copyIt}, then restore`);
  try {
    unsealJwk(
      (sealed.value as KeyEntry).private_sealed as SealedJwk,
      secret.value,
      sealed.key,
      secret.source,
    );
  } catch (err) {
    fail(`${(err as Error).message}: ${copyIt}, then restore`);
  }
}

type KeyEntry = { private_sealed?: SealedJwk };

export function registerAdminCommands(program: Command): void {
  const admin = program.command("admin").description("manage users, clients, tokens, keys and backups");
  registerUsers(admin);
  registerClients(admin);
  registerTokens(admin);
  registerKeys(admin);
  registerBackup(admin);
}
