/**
 * Compact JWS signing with node:crypto, for access tokens: one per signing key, built when the
 * key is loaded. jose signs through WebCrypto, whose sign is asynchronous and runs on the
 * thread pool (for ES256, about three times the CPU of a synchronous `crypto.sign` with a
 * KeyObject, and a queue hop per token); a refresh signs one token, so that was the largest
 * single cost of a refresh. The compact form is simple (RFC 7515 §7.1):
 *
 *   BASE64URL(header) . BASE64URL(payload) . BASE64URL(signature)
 *
 * with the header bytes fixed per key and computed once. ES256 signatures are the raw r||s
 * pair JWS requires (RFC 7518 §3.4), not DER. Verification stays with jose (tokens/verify.ts).
 */
import { createPrivateKey, type JsonWebKey, type KeyObject, sign } from "node:crypto";
import type { JWK } from "jose";
import type { SigningAlg } from "../tokens/claims.js";

export class JwsSigner {
  private readonly key: KeyObject;
  /** `BASE64URL(header).`, the same bytes for every token this key signs. */
  private readonly head: string;
  private readonly signInput: (input: Buffer) => Buffer;

  constructor(
    privateJwk: JWK,
    readonly alg: SigningAlg,
    readonly kid: string,
    typ: string,
  ) {
    this.key = createPrivateKey({ key: privateJwk as JsonWebKey, format: "jwk" });
    this.head = `${Buffer.from(JSON.stringify({ alg, kid, typ })).toString("base64url")}.`;
    const key = this.key;
    switch (alg) {
      case "ES256":
        this.signInput = (input) => sign("sha256", input, { key, dsaEncoding: "ieee-p1363" });
        break;
      case "RS256":
        this.signInput = (input) => sign("sha256", input, key);
        break;
      case "EdDSA":
        this.signInput = (input) => sign(null, input, key);
        break;
    }
  }

  /** The compact JWS of `payload` (a JSON object, serialised here). */
  signJson(payload: object): string {
    const input = this.head + Buffer.from(JSON.stringify(payload)).toString("base64url");
    return `${input}.${this.signInput(Buffer.from(input, "latin1")).toString("base64url")}`;
  }
}
