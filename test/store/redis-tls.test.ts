/**
 * Redis over TLS (`rediss://`) against a real redis-server with TLS only: a private CA given
 * as `tls_ca`, a client certificate for a server that requires one, and the refusals that must
 * stop start-up (an untrusted server, a missing client certificate, TLS files with redis://).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../../src/config/load.js";
import { openStore } from "../../src/store/open.js";
import { RedisStore } from "../../src/store/redis.js";
import { makeCertificates, opensslAvailable, type TestCertificates } from "../support/certs.js";
import { redisAvailable, startRedis, type TestRedis } from "../support/redis.js";

/** Outside CI a missing redis-server or openssl skips these tests; in CI they fail instead. */
const skip = (!redisAvailable() || !opensslAvailable()) && process.env.CI !== "true";

describe.skipIf(skip)("Redis over TLS", () => {
  let certs: TestCertificates;
  /** Requires a client certificate. */
  let mutual: TestRedis;
  /** Server authentication only. */
  let plain: TestRedis;

  beforeAll(async () => {
    certs = makeCertificates();
    const tls = {
      cert: certs.serverCert,
      key: certs.serverKey,
      ca: certs.ca,
      clientCert: certs.clientCert,
      clientKey: certs.clientKey,
    };
    mutual = (await startRedis({ tls: { ...tls, requireClientCert: true } })) as TestRedis;
    plain = (await startRedis({ tls: { ...tls, requireClientCert: false } })) as TestRedis;
  });
  afterAll(async () => {
    await mutual?.stop();
    await plain?.stop();
    certs?.remove();
  });

  it("stores and reads through rediss:// with a private CA", async () => {
    expect(plain.url).toMatch(/^rediss:\/\//);
    const store = await RedisStore.connect({ url: plain.url, tls_ca: certs.ca, key_prefix: "tls:" });
    try {
      await store.put("t", "k", { over: "tls" }, 60);
      expect(await store.get("t", "k")).toEqual({ over: "tls" });
      expect(await store.take("t", "k")).toEqual({ over: "tls" });
    } finally {
      await store.close();
    }
  });

  it("uses the client certificate when the server requires one, and fails clearly without it", async () => {
    const opts = { url: mutual.url, tls_ca: certs.ca, connect_timeout_ms: 2000 };
    const store = await RedisStore.connect({ ...opts, tls_cert: certs.clientCert, tls_key: certs.clientKey });
    try {
      await store.put("t", "m", 1, 60);
      expect(await store.get("t", "m")).toBe(1);
    } finally {
      await store.close();
    }
    await expect(RedisStore.connect(opts)).rejects.toThrow(
      /^cannot use Redis at rediss:\/\/127\.0\.0\.1:\d+/,
    );
  });

  it("refuses a server whose certificate the configured CA did not sign", async () => {
    const untrusted = RedisStore.connect({ url: plain.url, tls_ca: certs.otherCa, connect_timeout_ms: 2000 });
    await expect(untrusted).rejects.toThrow(/certificate/i);
    // Without tls_ca only the system's CAs count, and they did not sign this one either.
    await expect(RedisStore.connect({ url: plain.url, connect_timeout_ms: 2000 })).rejects.toThrow(
      /certificate/i,
    );
  });

  it("stops start-up on TLS settings that would not be used or cannot be read", async () => {
    const port = plain.port;
    await expect(RedisStore.connect({ url: `redis://127.0.0.1:${port}`, tls_ca: certs.ca })).rejects.toThrow(
      "store.redis.tls_ca needs a rediss:// url",
    );
    await expect(RedisStore.connect({ url: plain.url, tls_cert: certs.clientCert })).rejects.toThrow(
      "store.redis.tls_cert and store.redis.tls_key go together",
    );
    await expect(RedisStore.connect({ url: plain.url, tls_ca: "/nonexistent/ca.pem" })).rejects.toThrow(
      "store.redis.tls_ca: cannot read /nonexistent/ca.pem (ENOENT)",
    );
    const sentinel = { sentinels: [`127.0.0.1:${port}`], sentinel_name: "mymaster", tls_ca: certs.ca };
    await expect(RedisStore.connect(sentinel)).rejects.toThrow(
      "store.redis.tls_* is not supported with store.redis.sentinels",
    );
  });

  it("the gateway's store opens from config keys over TLS", async () => {
    const config = validateConfig({
      data_dir: certs.dir,
      store: { type: "redis", redis: { url: plain.url, tls_ca: certs.ca, key_prefix: "cfg:" } },
    });
    const store = await openStore(config);
    try {
      await store.ping();
      expect(store.kind).toBe("redis");
    } finally {
      await store.close();
    }
  });
});
