/**
 * `mcp-gateway admin backup FILE` and `admin restore FILE`: durable state to a JSON file and
 * back, into whichever store is configured (so a restore also moves SQLite to Redis). Large
 * stores print progress to stderr, so a long run is not mistaken for a hung one.
 */
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import type { GatewayConfig } from "../config/schema.js";
import {
  type EncryptionSecret,
  resolveEncryptionSecret,
  SECRET_FILE,
  secretFilePath,
} from "../crypto/encryption-secret.js";
import { type SealedJwk, unsealJwk } from "../crypto/sealing.js";
import { type Grant, ownersOf } from "../oauth/grant-store.js";
import { clientIndex, indexEntry, userIndex } from "../oauth/owners.js";
import type { Store } from "../store/store.js";
import { fail, type Opts, withStore } from "./admin-common.js";

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

/** A progress line on stderr every this many entries (and none for a smaller store). */
export const PROGRESS_EVERY = 10_000;

interface Backup {
  format: "mcp-oauth-gateway-backup";
  version: 1;
  created_at: string;
  entries: Array<{ ns: string; key: string; value: unknown; expires_at?: number }>;
}

const progress = (line: string) => process.stderr.write(`${line}\n`);

export function registerBackup(admin: Command): void {
  admin
    .command("backup <file>")
    .description(
      "write users, clients, keys, grants and revocations to a JSON file (it holds private keys: protect it)",
    )
    .option("--force", "overwrite FILE if it exists")
    .option("-c, --config <file>")
    .action((file: string, opts: Opts & { force?: boolean }) =>
      withStore(opts, async (store) => {
        const backup: Backup = {
          format: "mcp-oauth-gateway-backup",
          version: 1,
          created_at: new Date().toISOString(),
          entries: [],
        };
        let reported = 0;
        for (const ns of BACKUP_NAMESPACES) {
          for (const e of await store.list(ns)) {
            backup.entries.push({ ns, key: e.key, value: e.value, expires_at: e.expiresAt });
          }
          // A namespace is read in one call: report at the first namespace boundary past each mark.
          if (backup.entries.length - reported >= PROGRESS_EVERY) {
            reported = backup.entries.length;
            progress(`backup: ${reported} entries read (through ${ns})`);
          }
        }
        try {
          // "wx": the check for an existing file and the creation are one step.
          writeFileSync(file, JSON.stringify(backup), { mode: 0o600, flag: opts.force ? "w" : "wx" });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "EEXIST")
            fail(`${file} exists; not overwriting it (use --force to replace it)`);
          fail(`cannot write ${file}: ${(err as Error).message}`);
        }
        // An overwritten file keeps its old mode: the backup holds private keys.
        if (opts.force) chmodSync(file, 0o600);
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
        const total = backup.entries.length;
        let restored = 0;
        let seen = 0;
        for (const e of backup.entries) {
          seen++;
          if (total > PROGRESS_EVERY && seen % PROGRESS_EVERY === 0)
            progress(`restore: ${seen} of ${total} entries`);
          if (!BACKUP_NAMESPACES.includes(e.ns)) continue;
          const ttl = e.expires_at ? Math.floor((e.expires_at - Date.now()) / 1000) : undefined;
          if (ttl !== undefined && ttl <= 0) continue;
          // Indexed first, as the gateway writes them: revoking a restored user or client finds these.
          await indexRestored(store, e.ns, e.key, e.value, ttl);
          await store.put(e.ns, e.key, e.value as never, ttl);
          restored++;
        }
        process.stdout.write(`restored ${restored} entries from ${file}\n`);
      }),
    );
}

/** The owner-index entries of a restored grant or consent (STORAGE.md, "Owner indexes"). */
async function indexRestored(store: Store, ns: string, key: string, value: unknown, ttl: number | undefined) {
  if (ns === "grants") {
    const grant = value as Grant;
    if (!grant?.user?.sub || !grant.client_id) return;
    // As long as the grant believes its entries last (it re-adds them only after that).
    const until = grant.indexed_until ? grant.indexed_until - Math.floor(Date.now() / 1000) : 0;
    const lifetime = ttl === undefined ? undefined : Math.max(ttl, until);
    await indexEntry(store, ownersOf(grant), ns, key, lifetime);
  } else if (ns === "consents") {
    const consent = value as { sub?: string; client_id?: string };
    if (!consent?.sub || !consent.client_id) return;
    await indexEntry(store, [userIndex(consent.sub), clientIndex(consent.client_id)], ns, key, ttl);
  }
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
