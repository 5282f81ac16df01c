/**
 * `mcp-gateway admin …`: users, clients, tokens (grants), signing keys and backups, working on
 * the configured store directly (a running gateway sees the changes: revocations within the
 * revocation cache bound, new keys within a minute).
 */
import type { Command } from "commander";
import { ResourceIndex } from "../config/resources.js";
import type { GatewayConfig } from "../config/schema.js";
import { resolveEncryptionSecret } from "../crypto/encryption-secret.js";
import { newSecret } from "../crypto/secrets.js";
import { type LocalUser, LocalUserError, LocalUsers } from "../idp/local.js";
import { ClientStore } from "../oauth/clients.js";
import type { Grant } from "../oauth/grant-store.js";
import type { SigningAlg } from "../oauth/keys.js";
import type { Store } from "../store/store.js";
import { registerBackup } from "./admin-backup.js";
import { registerClients } from "./admin-clients.js";
import { clientMatches, fail, grantsOf, type Opts, revokerFor, withStore } from "./admin-common.js";
import { isoSeconds, type ListFormat, printList, shortTime } from "./output.js";

const USER_LIST: ListFormat<LocalUser> = {
  json: (u) => u,
  columns: [
    ["name", (u) => u.name],
    ["email", (u) => u.email ?? "-"],
    ["created", (u) => shortTime(Date.parse(u.created_at))],
    ["disabled", (u) => (u.disabled ? "yes" : "no")],
  ],
};

interface GrantRow {
  grant: Grant;
  services: string[];
  clientName?: string;
}

const GRANT_LIST: ListFormat<GrantRow> = {
  json: ({ grant: g, services, clientName }) => ({
    grant: g.sid,
    user: g.user.login,
    client_id: g.client_id,
    client_name: clientName,
    services,
    scope: g.scope.join(" "),
    since: isoSeconds(g.created_at),
  }),
  columns: [
    ["grant", ({ grant }) => grant.sid],
    ["user", ({ grant }) => grant.user.login],
    ["client", ({ grant, clientName }) => clientName ?? grant.client_id],
    ["services", ({ services }) => services.join(",") || "-"],
    ["since", ({ grant }) => shortTime(grant.created_at * 1000)],
  ],
};

type KeyRow = { kid: string; alg: SigningAlg; createdAt: number; signing: boolean };

const KEY_LIST: ListFormat<KeyRow> = {
  json: (k) => ({ ...k, createdAt: new Date(k.createdAt).toISOString() }),
  columns: [
    ["kid", (k) => k.kid],
    ["alg", (k) => k.alg],
    ["created", (k) => shortTime(k.createdAt)],
    ["signing", (k) => (k.signing ? "yes" : "no")],
  ],
};

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
    .description("local accounts: a table on a terminal, JSON lines otherwise")
    .option("--user <name>", "only this user (any case)")
    .option("--json", "JSON lines even on a terminal")
    .option("-c, --config <file>")
    .action((opts: Opts & { user?: string; json?: boolean }) =>
      withStore(opts, async (store) => {
        const all = await new LocalUsers(store).list();
        const name = opts.user?.toLowerCase();
        printList(name ? all.filter((u) => u.name.toLowerCase() === name) : all, USER_LIST, opts);
      }),
    );
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
        await revokerFor(store, config).revokeUser(user.name, { login: user.name, reason: "removed" });
        process.stdout.write(`removed ${name}\n`);
      }),
    );
  users
    .command("disable <name>")
    .description("refuse the user's sign-ins and end their sessions, consents and tokens (until enable)")
    .option("-c, --config <file>")
    .action((name: string, opts: Opts) =>
      withStore(opts, async (store, config) => {
        const users = new LocalUsers(store);
        const user = await users.get(name);
        if (!user) fail(`no such user: ${name}`);
        // Disabled first: a sign-in racing with this cannot start a session the revocation misses.
        await users.setDisabled(user.name, true);
        await revokerFor(store, config).revokeUser(user.name, { login: user.name, reason: "disabled" });
        process.stdout.write(`disabled ${user.name}\n`);
      }),
    );
  users
    .command("enable <name>")
    .description("let a disabled user sign in again (their old tokens stay revoked)")
    .option("-c, --config <file>")
    .action((name: string, opts: Opts) =>
      withStore(opts, async (store) => {
        const users = new LocalUsers(store);
        const user = await users.get(name);
        if (!user) fail(`no such user: ${name}`);
        await users.setDisabled(user.name, false);
        process.stdout.write(`enabled ${user.name}\n`);
      }),
    );
}

function registerTokens(admin: Command): void {
  const tokens = admin.command("tokens").description("grants: one per login of a user into a client");
  tokens
    .command("list")
    .description("live grants: a table on a terminal, JSON lines otherwise")
    .option("--user <login>", "only this user's grants")
    .option("--client <id-or-name>", "only grants to this client (its id, or part of its name)")
    .option("--json", "JSON lines even on a terminal")
    .option("-c, --config <file>")
    .action((opts: Opts & { user?: string; client?: string; json?: boolean }) =>
      withStore(opts, async (store, config) => {
        const resources = new ResourceIndex(config);
        const names = new Map(
          (await new ClientStore(store).list()).map((c) => [c.client_id, c.client_name] as const),
        );
        let grants = (await grantsOf(store, config).listGrants()).sort((a, b) => a.created_at - b.created_at);
        if (opts.user) {
          const login = opts.user.toLowerCase();
          grants = grants.filter((g) => g.user.login.toLowerCase() === login || g.user.sub === opts.user);
        }
        const client = opts.client;
        if (client) {
          grants = grants.filter((g) =>
            clientMatches({ client_id: g.client_id, client_name: names.get(g.client_id) }, client),
          );
        }
        const rows = grants.map((g) => ({
          grant: g,
          services: g.resources.map((r) => resources.serviceFor(r) ?? r),
          clientName: names.get(g.client_id),
        }));
        printList(rows, GRANT_LIST, opts);
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
  // Loaded here, not at the top: jose is most of a signing key's cost, and every other admin
  // command would pay for it at start-up.
  const open = async (store: Store, config: GatewayConfig) => {
    const { KeyRing } = await import("../oauth/keys.js");
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
    .description("signing keys, newest (the one signing) first")
    .option("--json", "JSON lines even on a terminal")
    .option("-c, --config <file>")
    .action((opts: Opts & { json?: boolean }) =>
      withStore(opts, async (store, config) => {
        const ring = await open(store, config);
        printList(ring.describe(), KEY_LIST, opts);
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

export function registerAdminCommands(program: Command): void {
  const admin = program.command("admin").description("manage users, clients, tokens, keys and backups");
  registerUsers(admin);
  registerClients(admin);
  registerTokens(admin);
  registerKeys(admin);
  registerBackup(admin);
}
