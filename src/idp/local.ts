/**
 * Local accounts: user names and scrypt password hashes kept in the gateway's own store, so a
 * first try needs no GitHub app. Namespace "users", key = lower-cased user name.
 */
import { randomBytes, scrypt as scryptCb } from "node:crypto";
import { promisify } from "node:util";
import { constantTimeEqual } from "../crypto/secrets.js";
import type { Store } from "../store/store.js";
import type { AccessDecision, PasswordIdentityProvider, Recheck, UserIdentity } from "./idp.js";

const scrypt = promisify(scryptCb) as (
  password: string,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

const NS = "users";
/** scrypt cost: 2^15 × 8 × 128 bytes = 32 MiB per hash, about 50 ms; OWASP's minimum for scrypt. */
const COST = { N: 2 ** 15, r: 8, p: 1 };
const KEY_LEN = 32;
/** Hashes read back from the store are not trusted to set an absurd cost. */
const MAX_N = 2 ** 20;
const MIN_PASSWORD = 8;
/** scrypt pre-hashes its input, but there is no reason to accept a megabyte of password. */
const MAX_PASSWORD = 1024;
const NAME_RE = /^[a-z0-9][a-z0-9._@-]{0,63}$/i;

/** A user as stored. `password_hash` is `scrypt$N$r$p$salt$hash` (base64url salt and hash). */
export type LocalUserRecord = {
  name: string;
  password_hash: string;
  email?: string;
  /** ISO 8601. */
  created_at: string;
  disabled?: boolean;
};

/** A user as shown to admins: everything but the hash. */
export type LocalUser = Omit<LocalUserRecord, "password_hash">;

/** A refused change to the user list; the message is meant for the admin. */
export class LocalUserError extends Error {
  override readonly name = "LocalUserError";
}

/** Hashes a password with scrypt and a random 16-byte salt. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(password, salt, KEY_LEN, { ...COST, maxmem: 256 * COST.N * COST.r });
  return ["scrypt", COST.N, COST.r, COST.p, salt.toString("base64url"), hash.toString("base64url")].join("$");
}

/** Checks a password against a stored hash in constant time; false for a malformed hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, saltText, hashText] = stored.split("$");
  const N = Number(n);
  const R = Number(r);
  const P = Number(p);
  if (
    alg !== "scrypt" ||
    !saltText ||
    !hashText ||
    !Number.isInteger(N) ||
    !Number.isInteger(R) ||
    !Number.isInteger(P)
  ) {
    return false;
  }
  if (N < 2 || N > MAX_N || (N & (N - 1)) !== 0 || R < 1 || R > 32 || P < 1 || P > 16) return false;
  const expected = Buffer.from(hashText, "base64url");
  if (expected.length < 16) return false;
  const actual = await scrypt(password, Buffer.from(saltText, "base64url"), expected.length, {
    N,
    r: R,
    p: P,
    maxmem: 256 * N * R,
  });
  return constantTimeEqual(actual, expected);
}

function checkPassword(password: string): void {
  if (password.length < MIN_PASSWORD) {
    throw new LocalUserError(`the password must be at least ${MIN_PASSWORD} characters long`);
  }
  if (password.length > MAX_PASSWORD) {
    throw new LocalUserError(`the password must be at most ${MAX_PASSWORD} characters long`);
  }
}

function checkName(name: string): string {
  const trimmed = name.trim();
  if (!NAME_RE.test(trimmed)) {
    throw new LocalUserError(
      `invalid user name "${name}": use 1 to 64 letters, digits, ".", "_", "@" or "-", starting with a letter or digit`,
    );
  }
  return trimmed;
}

const keyOf = (name: string) => name.trim().toLowerCase();

function publicView(record: LocalUserRecord): LocalUser {
  const { password_hash: _hash, ...user } = record;
  return user;
}

/** The local user list over the Store. */
export class LocalUsers {
  constructor(private readonly store: Store) {}

  /** Creates a user; fails if the name (in any case) is taken or the password is too short. */
  async add(name: string, password: string, email?: string): Promise<LocalUser> {
    const clean = checkName(name);
    checkPassword(password);
    const record: LocalUserRecord = {
      name: clean,
      password_hash: await hashPassword(password),
      created_at: new Date().toISOString(),
    };
    if (email?.trim()) record.email = email.trim();
    if (!(await this.store.putIfAbsent(NS, keyOf(clean), record))) {
      throw new LocalUserError(`user "${clean}" already exists`);
    }
    return publicView(record);
  }

  async setPassword(name: string, password: string): Promise<void> {
    checkPassword(password);
    const record = await this.require(name);
    await this.store.put(NS, keyOf(name), { ...record, password_hash: await hashPassword(password) });
  }

  /** Disables or re-enables a user; a disabled user's correct password is refused at login. */
  async setDisabled(name: string, disabled: boolean): Promise<void> {
    const record = await this.require(name);
    await this.store.put(NS, keyOf(name), { ...record, disabled });
  }

  /** Returns true if the user existed. */
  async remove(name: string): Promise<boolean> {
    return this.store.delete(NS, keyOf(name));
  }

  async list(): Promise<LocalUser[]> {
    const entries = await this.store.list<LocalUserRecord>(NS);
    return entries.map((e) => publicView(e.value)).sort((a, b) => a.name.localeCompare(b.name));
  }

  async get(name: string): Promise<LocalUser | undefined> {
    const record = await this.record(name);
    return record && publicView(record);
  }

  /** The stored record with its hash; for the identity provider only. */
  async record(name: string): Promise<LocalUserRecord | undefined> {
    return this.store.get<LocalUserRecord>(NS, keyOf(name));
  }

  /**
   * First start: if there are no users, creates `admin` with a random 24-character password
   * and returns it (to print once). Safe when several instances start together: only the one
   * whose putIfAbsent wins gets a password back.
   */
  async ensureBootstrapAdmin(): Promise<string | undefined> {
    if ((await this.store.list(NS)).length > 0) return undefined;
    const password = randomBytes(18).toString("base64url"); // 24 characters, 144 bits
    const record: LocalUserRecord = {
      name: "admin",
      password_hash: await hashPassword(password),
      created_at: new Date().toISOString(),
    };
    return (await this.store.putIfAbsent(NS, "admin", record)) ? password : undefined;
  }

  private async require(name: string): Promise<LocalUserRecord> {
    const record = await this.record(name);
    if (!record) throw new LocalUserError(`no user "${name.trim()}"`);
    return record;
  }
}

/** Logs people in with a local user name and password. */
export class LocalIdentityProvider implements PasswordIdentityProvider {
  readonly kind = "password" as const;
  readonly type = "local";
  readonly displayName = "Local account";
  /** A hash of nothing anyone knows, so unknown users cost the same scrypt work as known ones. */
  private readonly dummyHash = hashPassword(randomBytes(16).toString("hex"));
  /** Logins seen disabled at their last verify(); checkAccess is synchronous and cannot ask the store. */
  private readonly disabled = new Set<string>();

  constructor(readonly users: LocalUsers) {}

  async verify(username: string, password: string): Promise<UserIdentity | undefined> {
    const record = NAME_RE.test(username.trim()) ? await this.users.record(username) : undefined;
    const hash = record?.password_hash ?? (await this.dummyHash);
    const ok = await verifyPassword(password.slice(0, MAX_PASSWORD), hash);
    if (!record || !ok || password.length > MAX_PASSWORD) return undefined;
    const key = keyOf(record.name);
    if (record.disabled) this.disabled.add(key);
    else this.disabled.delete(key);
    const user: UserIdentity = { sub: record.name, login: record.name, provider: "local" };
    if (record.email) user.email = record.email;
    return user;
  }

  /** The account as stored now: gone when removed or disabled. */
  async recheck(user: UserIdentity): Promise<Recheck> {
    const record = await this.users.record(user.sub);
    if (!record || record.name !== user.sub) {
      return { outcome: "gone", reason: `the account ${user.login} was removed` };
    }
    const key = keyOf(record.name);
    if (record.disabled) {
      this.disabled.add(key);
      return { outcome: "gone", reason: `the account ${user.login} is disabled` };
    }
    this.disabled.delete(key);
    const current: UserIdentity = { sub: record.name, login: record.name, provider: "local" };
    if (record.email) current.email = record.email;
    return { outcome: "current", user: current };
  }

  checkAccess(user: UserIdentity): AccessDecision {
    if (this.disabled.has(keyOf(user.login))) {
      return { allowed: false, reason: `the account ${user.login} is disabled` };
    }
    return { allowed: true };
  }
}
