/**
 * Private signing keys at rest: sealed with AES-256-GCM under a key derived (scrypt, random
 * salt per sealed value) from the gateway's encryption secret: `keys.encryption_secret`, or the
 * one generated into `{data_dir}/secret` (crypto/encryption-secret.ts). Always sealed: a copy of
 * the database or a Redis dump alone does not give away a key that can sign tokens.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from "node:crypto";
import type { JWK } from "jose";

export interface SealedJwk {
  v: 1;
  salt: string;
  iv: string;
  tag: string;
  data: string;
}

/** Cost of deriving the sealing key: paid once per key at start-up, not per token. */
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

export class KeySealingError extends Error {
  override readonly name = "KeySealingError";
}

function derive(secret: string, salt: Buffer): Buffer {
  return scryptSync(secret, salt, 32, SCRYPT);
}

export function sealJwk(jwk: JWK, secret: string): SealedJwk {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", derive(secret, salt), iv);
  const data = Buffer.concat([cipher.update(JSON.stringify(jwk), "utf8"), cipher.final()]);
  return {
    v: 1,
    salt: salt.toString("base64url"),
    iv: iv.toString("base64url"),
    tag: cipher.getAuthTag().toString("base64url"),
    data: data.toString("base64url"),
  };
}

/** `source` names where the secret came from (`keys.encryption_secret`, a file path), for the error. */
export function unsealJwk(
  sealed: SealedJwk,
  secret: string,
  kid: string,
  source = "keys.encryption_secret",
): JWK {
  try {
    const decipher = createDecipheriv(
      "aes-256-gcm",
      derive(secret, Buffer.from(sealed.salt, "base64url")),
      Buffer.from(sealed.iv, "base64url"),
    );
    decipher.setAuthTag(Buffer.from(sealed.tag, "base64url"));
    const plain = Buffer.concat([decipher.update(Buffer.from(sealed.data, "base64url")), decipher.final()]);
    return JSON.parse(plain.toString("utf8")) as JWK;
  } catch {
    // A generated secret that does not fit: most likely the secret the keys were sealed with was
    // configured before and is missing now (an EnvironmentFile not read, a variable not set).
    const hint =
      source === "keys.encryption_secret" ? "" : "; set keys.encryption_secret to the one it was sealed with";
    throw new KeySealingError(
      `cannot decrypt signing key ${kid}: the encryption secret (${source}) is not the one it was sealed with${hint}`,
    );
  }
}
