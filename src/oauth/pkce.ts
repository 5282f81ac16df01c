/** PKCE (RFC 7636), S256 only: OAuth 2.1 and the MCP spec forbid `plain`. */
import { createHash } from "node:crypto";
import { constantTimeEqual } from "../crypto/secrets.js";

/** 43–128 characters of [A-Z a-z 0-9 - . _ ~] (RFC 7636 §4.1); challenges have the same alphabet. */
const PKCE_VALUE = /^[A-Za-z0-9\-._~]{43,128}$/;

export function isValidChallenge(challenge: string): boolean {
  // An S256 challenge is exactly base64url(sha256) = 43 characters.
  return /^[A-Za-z0-9\-_]{43}$/.test(challenge);
}

export function isValidVerifier(verifier: string): boolean {
  return PKCE_VALUE.test(verifier);
}

export function s256(verifier: string): string {
  return createHash("sha256").update(verifier).digest("base64url");
}

export function verifierMatches(verifier: string, challenge: string): boolean {
  if (!isValidVerifier(verifier)) return false;
  return constantTimeEqual(s256(verifier), challenge);
}
