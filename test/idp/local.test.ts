/**
 * Local users on a real SQLite store: the user list, scrypt hashes, the bootstrap admin, and
 * the password login (including that unknown users cost the same scrypt work as known ones).
 */

import { createRequire, syncBuiltinESMExports } from "node:module";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { validateConfig } from "../../src/config/load.js";
import { createIdentityProvider } from "../../src/idp/create.js";
import {
  hashPassword,
  LocalIdentityProvider,
  LocalUserError,
  LocalUsers,
  verifyPassword,
} from "../../src/idp/local.js";
import { SqliteStore } from "../../src/store/sqlite.js";

/** The CommonJS face of node:crypto, whose exports the ESM bindings follow (syncBuiltinESMExports). */
const nodeCrypto = createRequire(import.meta.url)("node:crypto") as typeof import("node:crypto");

let store: SqliteStore;
let users: LocalUsers;

beforeEach(() => {
  store = new SqliteStore(":memory:");
  users = new LocalUsers(store);
});
afterEach(async () => {
  await store.close();
});

describe("password hashes", () => {
  it("are scrypt$N$r$p$salt$hash with a fresh salt each time, and verify", async () => {
    const a = await hashPassword("correct horse");
    const b = await hashPassword("correct horse");
    expect(a).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword("correct horse", a)).toBe(true);
    expect(await verifyPassword("correct horsf", a)).toBe(false);
  });

  it("refuse malformed or absurd stored hashes without throwing", async () => {
    for (const bad of [
      "",
      "plain",
      "bcrypt$x",
      "scrypt$3$8$1$c2FsdA$aGFzaA",
      "scrypt$1073741824$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
    ]) {
      expect(await verifyPassword("whatever", bad)).toBe(false);
    }
  });
});

describe("LocalUsers", () => {
  it("adds, reads, lists and removes users, never exposing the hash", async () => {
    await users.add("Alice", "password-1", "alice@example.com");
    await users.add("bob", "password-2");
    expect(await users.get("ALICE")).toMatchObject({ name: "Alice", email: "alice@example.com" });
    const list = await users.list();
    expect(list.map((u) => u.name)).toEqual(["Alice", "bob"]);
    expect(JSON.stringify(list)).not.toContain("scrypt");
    expect((await store.get<{ password_hash: string }>("users", "alice"))?.password_hash).toMatch(
      /^scrypt\$/,
    );
    expect(await users.remove("alice")).toBe(true);
    expect(await users.remove("alice")).toBe(false);
    expect(await users.get("alice")).toBeUndefined();
  });

  it("refuses a taken name in any case, short passwords and bad names, with clear messages", async () => {
    await users.add("alice", "password-1");
    await expect(users.add("ALICE", "password-2")).rejects.toThrow('user "ALICE" already exists');
    await expect(users.add("carol", "short")).rejects.toThrow("at least 8 characters");
    await expect(users.add("bad name", "password-1")).rejects.toThrow(LocalUserError);
    await expect(users.add("", "password-1")).rejects.toThrow(/invalid user name/);
    await expect(users.setPassword("alice", "1234567")).rejects.toThrow("at least 8 characters");
    await expect(users.setPassword("nobody", "password-9")).rejects.toThrow('no user "nobody"');
  });

  it("changes a password so the old one stops working", async () => {
    const idp = new LocalIdentityProvider(users);
    await users.add("alice", "password-1");
    await users.setPassword("Alice", "password-2");
    expect(await idp.verify("alice", "password-1")).toBeUndefined();
    expect(await idp.verify("alice", "password-2")).toMatchObject({ login: "alice" });
  });

  it("creates the bootstrap admin once, with a 24-character password that works", async () => {
    const password = await users.ensureBootstrapAdmin();
    expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(await users.ensureBootstrapAdmin()).toBeUndefined();
    const idp = new LocalIdentityProvider(users);
    expect(await idp.verify("admin", password as string)).toMatchObject({ sub: "admin", login: "admin" });
  });

  it("creates no bootstrap admin when users exist", async () => {
    await users.add("alice", "password-1");
    expect(await users.ensureBootstrapAdmin()).toBeUndefined();
    expect(await users.get("admin")).toBeUndefined();
  });

  it("hands the bootstrap password to exactly one of several instances starting together", async () => {
    const instances = Array.from({ length: 5 }, () => new LocalUsers(store));
    const results = await Promise.all(instances.map((u) => u.ensureBootstrapAdmin()));
    const winners = results.filter((p): p is string => p !== undefined);
    expect(winners).toHaveLength(1);
    expect(await new LocalIdentityProvider(users).verify("admin", winners[0] as string)).toBeDefined();
  });
});

describe("LocalIdentityProvider", () => {
  it("logs in with the right password, case-insensitively on the name", async () => {
    await users.add("Alice", "password-1", "alice@example.com");
    const idp = new LocalIdentityProvider(users);
    const user = await idp.verify(" alice ", "password-1");
    expect(user).toEqual({ sub: "Alice", login: "Alice", email: "alice@example.com", provider: "local" });
    expect(idp.checkAccess(user as NonNullable<typeof user>)).toEqual({ allowed: true });
  });

  it("refuses a wrong password, an unknown user, an empty and an over-long password alike", async () => {
    await users.add("alice", "password-1");
    const idp = new LocalIdentityProvider(users);
    expect(await idp.verify("alice", "password-2")).toBeUndefined();
    expect(await idp.verify("mallory", "password-1")).toBeUndefined();
    expect(await idp.verify("alice", "")).toBeUndefined();
    expect(await idp.verify("alice", `password-1${"x".repeat(2000)}`)).toBeUndefined();
    expect(await idp.verify("bad name!", "password-1")).toBeUndefined();
  });

  it("does the same scrypt work for an unknown user, a bad name or an over-long password as for a known one", async () => {
    // Counted, not timed: Node's own scrypt, wrapped so that every call still runs it and is
    // recorded with its cost parameters. local.ts binds scrypt when it is evaluated, so it is
    // evaluated afresh after the wrapper is in place.
    const calls: Array<{ keylen: number; N: number; r: number; p: number; salt: number }> = [];
    const real = nodeCrypto.scrypt;
    const counting = function (this: unknown, ...args: Parameters<typeof real>) {
      const [, salt, keylen, options] = args as unknown as [
        string,
        Buffer,
        number,
        { N: number; r: number; p: number },
      ];
      calls.push({ keylen, N: options.N, r: options.r, p: options.p, salt: salt.length });
      return real.apply(this, args);
    };
    nodeCrypto.scrypt = counting as typeof real;
    syncBuiltinESMExports();
    try {
      vi.resetModules();
      const local = await import("../../src/idp/local.js");
      const fresh = new local.LocalUsers(store);
      await fresh.add("alice", "password-1");
      const idp = new local.LocalIdentityProvider(fresh);
      await idp.verify("warm-up", "x"); // the dummy hash is made once, on first use
      const work = async (name: string, password: string) => {
        calls.length = 0;
        expect(await idp.verify(name, password)).toBeUndefined();
        return [...calls];
      };
      const known = await work("alice", "wrong-password");
      expect(known).toEqual([{ keylen: 32, N: 2 ** 15, r: 8, p: 1, salt: 16 }]);
      for (const [name, password] of [
        ["nobody-here", "wrong-password"],
        ["bad name!", "wrong-password"],
        ["alice", `password-1${"x".repeat(2000)}`],
        ["alice", ""],
      ] as const) {
        expect(await work(name, password), `${name} / ${password.length} characters`).toEqual(known);
      }
    } finally {
      nodeCrypto.scrypt = real;
      syncBuiltinESMExports();
      vi.resetModules();
    }
  });

  it("refuses a disabled user at checkAccess, and lets them back when re-enabled", async () => {
    await users.add("alice", "password-1");
    await users.setDisabled("alice", true);
    const idp = new LocalIdentityProvider(users);
    const user = await idp.verify("alice", "password-1");
    expect(user).toBeDefined();
    expect(idp.checkAccess(user as NonNullable<typeof user>)).toEqual({
      allowed: false,
      reason: "the account alice is disabled",
    });
    await users.setDisabled("alice", false);
    const again = await idp.verify("alice", "password-1");
    expect(idp.checkAccess(again as NonNullable<typeof again>)).toEqual({ allowed: true });
  });

  it("is what createIdentityProvider builds for idp.type local", async () => {
    const idp = await createIdentityProvider(validateConfig({}), store);
    expect(idp.kind).toBe("password");
    expect(idp.type).toBe("local");
  });
});
