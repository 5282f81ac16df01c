/**
 * The private directory where a gateway process's in-process bridges listen: one per process,
 * created 0700 by mkdtemp in the OS temp dir, one unix socket per bridged service, removed on
 * close.
 *
 * The temp dir rather than `data_dir`: sockets are runtime state of one process, not data; the
 * temp dir's path is short (sun_path holds 108 bytes on Linux, 104 on macOS) where a data dir
 * may be long, relative, or on a volume shared with other containers or over NFS (where a unix
 * socket does not work, or would be reachable by the other side). Tmp cleaners leave sockets
 * that are in use alone (systemd-tmpfiles checks /proc/net/unix).
 */
import { createHash } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The shortest sun_path of the platforms Node runs on (macOS/BSD: 104 bytes with its NUL). */
const SUN_PATH_MAX = 103;

export class SocketDir {
  private constructor(readonly path: string) {}

  /** Creates `{parent}/mcpgw-XXXXXX`, mode 0700 (mkdtemp's own, made explicit against odd umasks). */
  static create(parent = tmpdir()): SocketDir {
    const path = mkdtempSync(join(parent, "mcpgw-"));
    chmodSync(path, 0o700);
    return new SocketDir(path);
  }

  /** The socket path for a service: its name when that fits in sun_path, else a short hash of it. */
  socketFor(service: string): string {
    const named = join(this.path, `${service}.sock`);
    if (Buffer.byteLength(named) <= SUN_PATH_MAX) return named;
    const hashed = join(this.path, `${createHash("sha256").update(service).digest("hex").slice(0, 12)}.sock`);
    if (Buffer.byteLength(hashed) <= SUN_PATH_MAX) return hashed;
    throw new Error(
      `the temp directory ${this.path} is too long for a unix socket path (${SUN_PATH_MAX} bytes); set TMPDIR to a shorter one`,
    );
  }

  /** Removes the directory and whatever is left in it. */
  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}
