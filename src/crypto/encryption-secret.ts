/**
 * The one secret that seals what the gateway keeps at rest (private signing keys; anything else
 * sealed later uses the same value). Resolved once, here, for every caller:
 *
 * - `keys.encryption_secret` when configured (required with Redis: several instances share the
 *   store, so they must share the secret, and a secret generated per instance would leave each
 *   unable to read the others' keys);
 * - otherwise `{data_dir}/secret`, generated on first use: 32 random bytes, base64url, mode 0600
 *   in a 0700 `data_dir`, written atomically and never overwritten.
 *
 * The value is never logged; `source` names where it came from, for messages.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { ConfigError } from "../config/load.js";
import type { GatewayConfig } from "../config/schema.js";

export interface EncryptionSecret {
  /** The secret itself: hand it to sealing code only. */
  readonly value: string;
  /** Where it came from (`keys.encryption_secret` or the file's path): safe to print. */
  readonly source: string;
}

/** The same floor the schema puts on `keys.encryption_secret`. */
const MIN_LENGTH = 16;
export const SECRET_FILE = "secret";

type SecretConfig = Pick<GatewayConfig, "keys" | "data_dir"> & {
  store: Pick<GatewayConfig["store"], "type">;
};

export function secretFilePath(config: Pick<GatewayConfig, "data_dir">): string {
  return resolve(join(config.data_dir, SECRET_FILE));
}

/**
 * The sealing secret for `config`. Without `keys.encryption_secret` it reads `{data_dir}/secret`
 * and, when `generate` (the default) and the file does not exist, creates it. Throws a
 * ConfigError (one line naming the key) on Redis without an explicit secret, or when the file
 * exists but is unusable (it is never replaced: what it sealed would be lost).
 */
export function resolveEncryptionSecret(config: SecretConfig): EncryptionSecret;
export function resolveEncryptionSecret(
  config: SecretConfig,
  options: { generate: false },
): EncryptionSecret | undefined;
export function resolveEncryptionSecret(
  config: SecretConfig,
  { generate = true }: { generate?: boolean } = {},
): EncryptionSecret | undefined {
  const configured = config.keys.encryption_secret;
  if (configured) return { value: configured, source: "keys.encryption_secret" };
  if (config.store.type === "redis") {
    throw new ConfigError(
      "keys.encryption_secret: required with store.type redis (the same value on every instance; MCP_GATEWAY_KEYS__ENCRYPTION_SECRET)",
    );
  }
  const path = secretFilePath(config);
  const existing = readSecretFile(path);
  if (existing !== undefined || !generate)
    return existing === undefined ? undefined : { value: existing, source: path };
  return { value: createSecretFile(path), source: path };
}

/** The file's secret; undefined when there is no file. */
function readSecretFile(path: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ConfigError(
      `${path}: cannot read the encryption secret (${(err as NodeJS.ErrnoException).code})`,
    );
  }
  const value = text.trim();
  if (value.length < MIN_LENGTH) {
    throw new ConfigError(
      `${path}: the encryption secret is shorter than ${MIN_LENGTH} characters; restore the file (it seals the signing keys) or set keys.encryption_secret`,
    );
  }
  return value;
}

/**
 * Writes a new secret to a private temp file, then links it into place: the link fails if the
 * file appeared meanwhile (another process starting on the same data_dir), so a secret is never
 * overwritten, and whoever lost the race reads the winner's.
 */
function createSecretFile(path: string): string {
  const dir = resolve(path, "..");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const value = randomBytes(32).toString("base64url");
  const temp = `${path}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  const fd = openSync(temp, "wx", 0o600);
  try {
    writeSync(fd, `${value}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const theirs = readSecretFile(path);
    if (theirs === undefined)
      throw new ConfigError(`${path}: the encryption secret vanished while it was created`);
    return theirs;
  } finally {
    unlinkSync(temp);
  }
  syncDirectory(dir);
  return value;
}

/** The new directory entry survives a crash only once the directory itself is synced. */
function syncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Not every platform can fsync a directory; the file itself is synced.
  }
}
