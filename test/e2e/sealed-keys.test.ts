/**
 * Signing keys sealed by default, as a user meets it: `serve` on a fresh directory generates
 * `data/secret` (0600) in a 0700 `data/`, the database is 0600 and holds only sealed private
 * keys; a restart reuses the secret (tokens issued before still open a service); a store left
 * by an older version with plain private keys is sealed on start; `doctor` warns about such a
 * store, SQLite or Redis; and a Redis store without an explicit `keys.encryption_secret` is refused with one
 * line naming the key, because a per-instance generated secret would split the instances.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisStore } from "../../src/store/redis.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { Store } from "../../src/store/store.js";
import { accessTokenFor } from "../support/login.js";
import { postInitialize } from "../support/mcp-http.js";
import { startRedis } from "../support/redis.js";
import { freePort, startUpstream, type TestUpstream } from "../support/upstream.js";
import { runDoctor } from "./doctor-process.js";
import { BIN, BUILT, cleanEnv, startServe } from "./serve-process.js";

const run = promisify(execFile);

const mode = (path: string) => statSync(path).mode & 0o777;

/** `serve --no-builtins` in `cwd` on `port`, until its banner is out. */
const serve = (cwd: string, port: number) => startServe({ cwd, port, args: ["--no-builtins"] });

/** The rows of the `keys` namespace, read straight from the SQLite file. */
function keyRows(db: string): Array<Record<string, unknown>> {
  const conn = new Database(db, { readonly: true });
  try {
    const rows = conn.prepare("SELECT value FROM kv WHERE ns = 'keys'").all() as Array<{ value: string }>;
    return rows.map((r) => JSON.parse(r.value) as Record<string, unknown>);
  } finally {
    conn.close();
  }
}

/** A `keys` row as versions before sealing-by-default wrote it: the private JWK in the clear. */
async function writeUnsealedKey(db: string): Promise<string> {
  return writeUnsealedKeyTo(new SqliteStore(db));
}

/** The same unsealed row, in any store (closed afterwards). */
async function writeUnsealedKeyTo(store: Store): Promise<string> {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const kid = "legacy-key";
  await store.put("keys", kid, {
    kid,
    alg: "ES256",
    private_jwk: { ...(await exportJWK(privateKey)), kid, alg: "ES256" },
    public_jwk: { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" },
    created_at: Date.now(),
  } as never);
  await store.close();
  return kid;
}

const doctor = (cwd: string, config: string) => runDoctor(cwd, config, cleanEnv());

describe.skipIf(!BUILT && process.env.CI !== "true")(
  "signing keys sealed by default (run `npm run build` first)",
  () => {
    let upstream: TestUpstream;
    const dirs: string[] = [];
    const tempDir = (name: string) => {
      const dir = mkdtempSync(join(tmpdir(), `mcpgw-${name}-`));
      dirs.push(dir);
      return dir;
    };
    beforeAll(async () => {
      upstream = await startUpstream();
    });
    afterAll(async () => {
      await upstream?.close();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    });

    it("a fresh serve writes data/secret 0600 in a 0700 data/, a 0600 database holding only sealed keys", {
      timeout: 120_000,
    }, async () => {
      const dir = tempDir("sealed");
      writeFileSync(join(dir, "gateway.yaml"), `services:\n  echo: { url: "${upstream.url}" }\n`);
      const port = await freePort();
      const first = await serve(dir, port);
      const data = join(dir, "data");
      const db = join(data, "gateway.db");
      try {
        expect(existsSync(join(data, "secret")), "data/secret exists").toBe(true);
        expect(mode(join(data, "secret")).toString(8)).toBe("600");
        expect(mode(data).toString(8)).toBe("700");
        expect(mode(db).toString(8)).toBe("600");
        for (const side of ["-wal", "-shm"])
          if (existsSync(`${db}${side}`)) expect(mode(`${db}${side}`).toString(8), side).toBe("600");
        const secret = readFileSync(join(data, "secret"), "utf8");
        expect(secret.trim().length).toBeGreaterThanOrEqual(32);
        expect(first.stdout() + first.stderr()).not.toContain(secret.trim());

        const rows = keyRows(db);
        expect(rows.length).toBeGreaterThan(0);
        for (const row of rows) {
          expect(row.private_sealed, "sealed private key").toBeDefined();
          expect(row.private_jwk, "no plain private key").toBeUndefined();
        }

        // A token issued now opens the service after a restart: the restart unseals with the same secret.
        const password = first.password as string;
        const { accessToken } = await accessTokenFor(
          `http://127.0.0.1:${port}`,
          [`http://localhost:${port}/echo/mcp`],
          {
            username: "admin",
            password,
          },
        );
        const mcp = `http://127.0.0.1:${port}/echo/mcp`;
        expect((await postInitialize(mcp, { authorization: `Bearer ${accessToken}` })).status).toBe(200);
        expect(await first.stop()).toBe(0);

        const second = await serve(dir, port);
        try {
          expect(readFileSync(join(data, "secret"), "utf8")).toBe(secret);
          expect((await postInitialize(mcp, { authorization: `Bearer ${accessToken}` })).status).toBe(200);
        } finally {
          await second.stop();
        }
      } finally {
        if (first.child.exitCode === null) await first.stop();
      }
    });

    it("seals the plain private keys of a store an older version left, keeping their kid", {
      timeout: 60_000,
    }, async () => {
      const dir = tempDir("legacy");
      const data = join(dir, "data");
      mkdirSync(data, { recursive: true });
      const db = join(data, "gateway.db");
      const kid = await writeUnsealedKey(db);
      expect(keyRows(db)[0]?.private_jwk).toBeDefined();

      const gw = await serve(dir, await freePort());
      try {
        const rows = keyRows(db);
        const legacy = rows.find((r) => r.kid === kid);
        expect(legacy, "the old key is still there").toBeDefined();
        expect(legacy?.private_jwk).toBeUndefined();
        expect(legacy?.private_sealed).toBeDefined();
        expect(rows.every((r) => r.private_jwk === undefined)).toBe(true);
        const jwks = (await (await fetch(`http://127.0.0.1:${gw.port}/jwks`)).json()) as {
          keys: Array<{ kid: string }>;
        };
        expect(jwks.keys.map((k) => k.kid)).toContain(kid);
      } finally {
        await gw.stop();
      }
    });

    it("doctor warns about unsealed keys in a SQLite store", { timeout: 60_000 }, async () => {
      const dir = tempDir("doctor-sqlite");
      const data = join(dir, "data");
      mkdirSync(data, { recursive: true });
      await writeUnsealedKey(join(data, "gateway.db"));
      const { lines } = await doctor(dir, `data_dir: ${data}\n`);
      expect(lines.get("keys")).toMatch(/^warn .*1 signing key .*unsealed/);
    });

    it("doctor warns about unsealed keys in a Redis store", { timeout: 60_000 }, async () => {
      const redis = await startRedis();
      if (!redis) return;
      try {
        const dir = tempDir("doctor-redis");
        // The store's own default prefix, the one the config below leaves in place.
        await writeUnsealedKeyTo(await RedisStore.connect({ url: redis.url }));
        const yaml = `data_dir: ${join(dir, "data")}\nstore: { type: redis, redis: { url: "${redis.url}" } }\nkeys: { encryption_secret: "doctor-redis test secret, long enough" }\n`;
        const { lines } = await doctor(dir, yaml);
        expect(lines.get("store")).toMatch(/^ok redis/);
        expect(lines.get("keys")).toMatch(/^warn .*1 signing key in the redis store is unsealed/);
      } finally {
        await redis.stop();
      }
    });

    it("refuses Redis without an explicit keys.encryption_secret: serve exits 2 with one line, doctor fails", {
      timeout: 60_000,
    }, async () => {
      const dir = tempDir("redis-secret");
      // No Redis needs to answer: the refusal comes before the store is reached.
      const yaml = `data_dir: ${join(dir, "data")}\nstore: { type: redis, redis: { url: "redis://127.0.0.1:${await freePort()}" } }\n`;
      writeFileSync(join(dir, "gateway.yaml"), yaml);
      const res = await run(
        process.execPath,
        [BIN, "serve", "--no-builtins", "--port", String(await freePort())],
        {
          cwd: dir,
          env: cleanEnv(),
        },
      ).then(
        () => ({ status: 0, stderr: "" }),
        (e: { stderr: string; code: number }) => ({ status: e.code, stderr: e.stderr }),
      );
      expect(res.status).toBe(2);
      expect(res.stderr.trim().split("\n")).toHaveLength(1);
      expect(res.stderr).toContain("keys.encryption_secret");
      expect(existsSync(join(dir, "data", "secret"))).toBe(false);

      const { lines } = await doctor(dir, yaml);
      expect(lines.get("keys")).toMatch(/^fail .*keys\.encryption_secret/);
    });
  },
);
