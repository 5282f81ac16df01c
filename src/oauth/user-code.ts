/**
 * User codes of the device grant (RFC 8628 §6.1): short enough for a person to read off one
 * screen and type on another. Eight letters from the base-20 alphabet the RFC gives (no vowels,
 * so no words; no digits, so no 0/O or 1/I), about 34.5 bits, shown as XXXX-XXXX and compared
 * case-insensitively with dashes and spaces ignored. Guessing is bounded by the expiry and the
 * entry brake (rate_limits.device), not by the code's length (RFC 8628 §5.1).
 */
import { randomInt } from "node:crypto";

export const USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ";
export const USER_CODE_LENGTH = 8;

/** A fresh code in its canonical form (8 capitals, no dash), uniformly drawn. */
export function newUserCode(): string {
  let code = "";
  for (let i = 0; i < USER_CODE_LENGTH; i++) code += USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)];
  return code;
}

/** What a person typed, in canonical form; undefined when it cannot be a user code at all. */
export function normalizeUserCode(input: string | undefined): string | undefined {
  if (input === undefined || input.length > 32) return undefined;
  const code = input.replace(/[\s-]+/g, "").toUpperCase();
  if (code.length !== USER_CODE_LENGTH) return undefined;
  for (const c of code) if (!USER_CODE_ALPHABET.includes(c)) return undefined;
  return code;
}

/** The display form: XXXX-XXXX. */
export function formatUserCode(code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}
