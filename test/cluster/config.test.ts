/** The `cluster` settings: refused at start-up, with the key named, unless they make a cluster. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { startCluster } from "../../src/cluster/index.js";
import { ConfigError, validateConfig } from "../../src/config/load.js";
import { SqliteStore } from "../../src/store/sqlite.js";

/** A logger that writes nothing (fastify's own, without output). */
const SILENT = Fastify({ logger: false }).log;
const SECRET = "a-cluster-secret-of-enough-length-0123456789";

describe("cluster config", () => {
  it.each([
    [{ secret: SECRET }, /advertise_url is needed/],
    [{ advertise_url: "http://127.0.0.1:8081" }, /advertise_url needs secret/],
    [{ secret: "short", advertise_url: "http://127.0.0.1:8081" }, /at least 32/],
    [
      { secret: SECRET, secret_file: "/x", advertise_url: "http://127.0.0.1:8081" },
      /either secret or secret_file/,
    ],
    [{ secret: SECRET, advertise_url: "ftp://127.0.0.1:8081" }, /cluster/],
  ])("%j is refused", (cluster, message) => {
    expect(() => validateConfig({ cluster })).toThrow(message);
  });

  it("a cluster on the embedded store is refused: the instances would not share it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mcpgw-cluster-config-"));
    const store = new SqliteStore(join(dir, "gateway.db"));
    try {
      const config = validateConfig({ cluster: { secret: SECRET, advertise_url: "http://127.0.0.1:0" } });
      const refused = startCluster(config, store, SILENT);
      await expect(refused).rejects.toBeInstanceOf(ConfigError);
      await expect(refused).rejects.toThrow(/store.type redis/);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("without a secret there is no cluster, and nothing listens", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mcpgw-cluster-config-"));
    const store = new SqliteStore(join(dir, "gateway.db"));
    try {
      expect(await startCluster(validateConfig({}), store, SILENT)).toBeUndefined();
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
