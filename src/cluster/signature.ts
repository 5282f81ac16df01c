/**
 * How one instance proves to another that a relayed request is its own, without the cluster
 * secret ever crossing the wire (the internal channel is plain HTTP between instances): an
 * HMAC-SHA256, under a key derived from the secret with HKDF, over the method, the target
 * (the owner's advertise_url and the path), a timestamp, a random nonce, every relayed header
 * by name, and a digest of the body. The receiver recomputes it, compares in constant time,
 * accepts it only within a short freshness window, and only once (nonces seen in the window are
 * kept). A captured request is therefore good for nothing: not again, not altered, not at
 * another instance, not later.
 */
import { createHash, createHmac, hkdfSync, randomBytes } from "node:crypto";
import { constantTimeEqual } from "../crypto/secrets.js";
import { CLUSTER_HEADER_PREFIX } from "./protocol.js";

export const SIGNATURE_HEADER = `${CLUSTER_HEADER_PREFIX}cluster-signature`;
export const TIME_HEADER = `${CLUSTER_HEADER_PREFIX}cluster-time`;
export const NONCE_HEADER = `${CLUSTER_HEADER_PREFIX}cluster-nonce`;
/** The names of the signed headers, in signing order (comma-separated, lower case). */
export const SIGNED_HEADERS_HEADER = `${CLUSTER_HEADER_PREFIX}cluster-headers`;

/** The signature's own headers: never among the signed ones. */
const OWN = new Set([SIGNATURE_HEADER, TIME_HEADER, NONCE_HEADER, SIGNED_HEADERS_HEADER]);

/** A request is fresh this many seconds either side of the receiver's clock (skew between hosts). */
export const FRESHNESS_SECONDS = 15;

/** The signing key: never the secret itself, so nothing computed with it reveals the secret. */
export function relayKey(secret: string): Buffer {
  return Buffer.from(hkdfSync("sha256", secret, "mcp-gateway cluster", "relay request signature v1", 32));
}

type Headers = Record<string, string | string[] | undefined>;

export interface SignedRequest {
  method: string;
  /** The owner's advertise_url (no trailing slash): binds the request to one instance. */
  target: string;
  /** Path and query as sent. */
  path: string;
  body: Buffer | undefined;
}

function headerValue(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join(", ") : (value ?? "");
}

function mac(key: Buffer, r: SignedRequest, time: string, nonce: string, names: string[], headers: Headers) {
  const h = createHmac("sha256", key);
  const bodyDigest = createHash("sha256")
    .update(r.body ?? Buffer.alloc(0))
    .digest("base64url");
  // One field per line: no field can hold a line break (header values, paths and methods cannot).
  h.update(`v1\n${r.method.toUpperCase()}\n${r.target}\n${r.path}\n${time}\n${nonce}\n${bodyDigest}\n`);
  h.update(names.join(","));
  for (const name of names) h.update(`\n${name}:${headerValue(headers[name])}`);
  return h.digest("base64url");
}

/**
 * Adds the signature headers to `headers` (which must already hold everything relayed): every
 * header in it is signed.
 */
export function signRelayed(key: Buffer, request: SignedRequest, headers: Record<string, string | string[]>) {
  const names = Object.keys(headers)
    .map((n) => n.toLowerCase())
    .filter((n) => !OWN.has(n))
    .sort();
  const time = String(Math.floor(Date.now() / 1000));
  const nonce = randomBytes(16).toString("base64url");
  headers[TIME_HEADER] = time;
  headers[NONCE_HEADER] = nonce;
  headers[SIGNED_HEADERS_HEADER] = names.join(",");
  headers[SIGNATURE_HEADER] = mac(key, request, time, nonce, names, headers);
}

export type Verdict =
  | { ok: true; signedHeaders: Set<string> }
  | { ok: false; reason: "unsigned" | "malformed" | "stale" | "bad signature" | "replayed" | "busy" };

/**
 * Most nonces remembered at once. Only correctly signed requests are remembered, and each for
 * the freshness window only, so this is far above what instances send in 30 s; it bounds memory
 * all the same. A live nonce is never evicted to make room (that would let its request be
 * replayed inside the window): when every slot holds one, new requests are refused ("busy")
 * until some expire.
 */
export const MAX_NONCES = 200_000;

const NONCE = /^[A-Za-z0-9_-]{16,64}$/;
const NAMES = /^[a-z0-9!#$%&'*+.^_`|~-]+(,[a-z0-9!#$%&'*+.^_`|~-]+)*$/;

/** The receiving side: checks signatures, remembers the nonces it accepted within the window. */
export class RelayVerifier {
  /** nonce -> when it can be forgotten (ms): after that its timestamp is stale anyway. */
  private readonly seen = new Map<string, number>();
  private nextSweep = 0;

  constructor(
    private readonly key: Buffer,
    private readonly now: () => number = Date.now,
    private readonly maxNonces = MAX_NONCES,
  ) {}

  /** What can be refused from the headers alone (before a body is read): undefined if nothing. */
  preflight(headers: Headers): Extract<Verdict, { ok: false }> | undefined {
    const signature = headers[SIGNATURE_HEADER];
    const time = headers[TIME_HEADER];
    const nonce = headers[NONCE_HEADER];
    const listed = headers[SIGNED_HEADERS_HEADER];
    if (signature === undefined && time === undefined && nonce === undefined)
      return { ok: false, reason: "unsigned" };
    if (
      typeof signature !== "string" ||
      typeof time !== "string" ||
      typeof nonce !== "string" ||
      typeof listed !== "string" ||
      !/^\d{1,12}$/.test(time) ||
      !NONCE.test(nonce) ||
      (listed !== "" && !NAMES.test(listed))
    )
      return { ok: false, reason: "malformed" };
    if (Math.abs(this.now() - Number(time) * 1000) > FRESHNESS_SECONDS * 1000)
      return { ok: false, reason: "stale" };
    if (listed.split(",").some((n) => OWN.has(n))) return { ok: false, reason: "malformed" };
    return undefined;
  }

  verify(request: SignedRequest, headers: Headers): Verdict {
    const early = this.preflight(headers);
    if (early) return early;
    const signature = headers[SIGNATURE_HEADER] as string;
    const time = headers[TIME_HEADER] as string;
    const nonce = headers[NONCE_HEADER] as string;
    const listed = headers[SIGNED_HEADERS_HEADER] as string;
    const now = this.now();
    const at = Number(time) * 1000;
    const names = listed === "" ? [] : listed.split(",");
    if (!constantTimeEqual(signature, mac(this.key, request, time, nonce, names, headers)))
      return { ok: false, reason: "bad signature" };
    // Only a correctly signed request reaches the cache: nobody else can fill it.
    this.sweep(now);
    if (this.seen.has(nonce)) return { ok: false, reason: "replayed" };
    if (this.seen.size >= this.maxNonces) {
      // Full: forget what has expired now rather than at the next second's sweep; never a live one.
      this.sweep(now, true);
      if (this.seen.size >= this.maxNonces) return { ok: false, reason: "busy" };
    }
    this.seen.set(nonce, at + FRESHNESS_SECONDS * 1000);
    return { ok: true, signedHeaders: new Set(names) };
  }

  /** Nonces remembered now (for tests and metrics). */
  get remembered(): number {
    return this.seen.size;
  }

  private sweep(now: number, force = false): void {
    if (now < this.nextSweep && !force) return;
    this.nextSweep = now + 1000;
    for (const [nonce, until] of this.seen) if (until < now) this.seen.delete(nonce);
  }
}
