/** The in-process bridges' socket directory on the real file system: modes, sun_path, clean-up. */
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SocketDir } from "../../src/bridge/socket-dir.js";

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("SocketDir", () => {
  it("is a fresh 0700 directory per call, removed with what is in it", () => {
    const a = SocketDir.create();
    const b = SocketDir.create();
    made.push(a.path, b.path);
    expect(a.path).not.toBe(b.path);
    expect(statSync(a.path).mode & 0o777).toBe(0o700);
    expect(dirname(a.socketFor("time"))).toBe(a.path);
    a.remove();
    expect(existsSync(a.path)).toBe(false);
  });

  it("keeps every socket path within sun_path, hashing long service names", () => {
    const dir = SocketDir.create();
    made.push(dir.path);
    expect(dir.socketFor("time")).toBe(join(dir.path, "time.sock"));
    const long = "a".repeat(200);
    const path = dir.socketFor(long);
    expect(Buffer.byteLength(path)).toBeLessThanOrEqual(103);
    expect(path).not.toBe(dir.socketFor(`${long}b`));
  });

  it("says to set TMPDIR when the temp dir itself is too long for a socket path", () => {
    const base = mkdtempSync(join(tmpdir(), "mcpgw-long-"));
    made.push(base);
    const deep = join(base, "d".repeat(60), "e".repeat(60));
    mkdirSync(deep, { recursive: true });
    const dir = SocketDir.create(deep);
    expect(() => dir.socketFor("time")).toThrow(/set TMPDIR to a shorter one/);
  });
});
