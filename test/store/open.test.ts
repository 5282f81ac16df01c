import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { validateConfig } from "../../src/config/load.js";
import { openStore } from "../../src/store/open.js";

describe("openStore", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "mcpgw-open-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("defaults to SQLite at {data_dir}/gateway.db, and the data survives reopening", async () => {
    const config = validateConfig({ data_dir: join(dir, "data") });
    const store = await openStore(config);
    expect(store.kind).toBe("sqlite");
    expect(store.location).toBe(join(dir, "data", "gateway.db"));
    await store.put("n", "k", { v: 1 });
    await store.close();
    expect(existsSync(join(dir, "data", "gateway.db"))).toBe(true);
    const again = await openStore(config);
    expect(await again.get("n", "k")).toEqual({ v: 1 });
    await again.close();
  });

  it("honours store.sqlite_path", async () => {
    const config = validateConfig({
      data_dir: join(dir, "unused"),
      store: { sqlite_path: join(dir, "x", "s.db") },
    });
    const store = await openStore(config);
    expect(store.location).toBe(join(dir, "x", "s.db"));
    await store.close();
    expect(existsSync(join(dir, "unused"))).toBe(false);
  });

  it("fails with one line when the configured Redis is unreachable", async () => {
    const config = validateConfig({ store: { type: "redis", redis: { url: "redis://127.0.0.1:1" } } });
    await expect(openStore(config)).rejects.toThrow(
      /^cannot use Redis at redis:\/\/127\.0\.0\.1:1: connect ECONNREFUSED/,
    );
  });
});
