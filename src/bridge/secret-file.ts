/** Reads a bearer secret kept in a file (a bridge's token): its first line, without whitespace around it. */
import { readFileSync } from "node:fs";

/** RFC 6750 §2.1 b64token: what an `Authorization: Bearer` value may hold. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** The secret in `path`; throws a one-line error (no secret in it) when unreadable or empty. */
export function readSecretFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const secret = (text.split(/\r?\n/, 1)[0] ?? "").trim();
  if (!secret) throw new Error(`${path} is empty`);
  if (!B64TOKEN.test(secret)) {
    throw new Error(
      `${path} does not hold a bearer token (letters, digits and -._~+/ only; e.g. from openssl rand -hex 32)`,
    );
  }
  return secret;
}
