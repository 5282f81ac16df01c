/**
 * Sealing a rotated refresh token's successor for the grace window, so a repeat of the
 * predecessor can be answered with the same successor instead of a new chain. AES-256-GCM
 * under a key derived once (scrypt) from `keys.encryption_secret`, a random IV per value, and
 * the grant id and predecessor hash as associated data, so a sealed value is only good in the
 * one place it was written for.
 */
import { createCipheriv, createDecipheriv, scrypt } from "node:crypto";
import { randomPooled } from "../crypto/secrets.js";

/** The same cost as the signing-key sealing, paid once per process, not per token. */
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
/** Fixed per purpose: this key seals nothing but refresh successors. */
const SALT = "mcp-gateway refresh successor v1";
const VERSION = "v1";

export class SuccessorSealer {
  private readonly key: Promise<Buffer>;

  /** `purpose` keeps keys apart: upstream credentials (liveness.ts) are sealed under their own. */
  constructor(secret: string, purpose = SALT) {
    this.key = new Promise((resolve, reject) =>
      scrypt(secret, purpose, 32, SCRYPT, (err, key) => (err ? reject(err) : resolve(key))),
    );
    // Derivation errors surface on first use, not as an unhandled rejection.
    this.key.catch(() => {});
  }

  async seal(token: string, context: string): Promise<string> {
    const iv = randomPooled(12);
    const cipher = createCipheriv("aes-256-gcm", await this.key, iv);
    cipher.setAAD(Buffer.from(context, "utf8"));
    const data = Buffer.concat([cipher.update(token, "utf8"), cipher.final()]);
    return [VERSION, iv, cipher.getAuthTag(), data]
      .map((p) => (typeof p === "string" ? p : p.toString("base64url")))
      .join(".");
  }

  /** The token, or undefined when the value was sealed under another secret or elsewhere. */
  async unseal(sealed: string, context: string): Promise<string | undefined> {
    const [version, iv, tag, data] = sealed.split(".");
    if (version !== VERSION || !iv || !tag || data === undefined) return undefined;
    try {
      const decipher = createDecipheriv("aes-256-gcm", await this.key, Buffer.from(iv, "base64url"));
      decipher.setAAD(Buffer.from(context, "utf8"));
      decipher.setAuthTag(Buffer.from(tag, "base64url"));
      return Buffer.concat([decipher.update(Buffer.from(data, "base64url")), decipher.final()]).toString(
        "utf8",
      );
    } catch {
      return undefined;
    }
  }
}
