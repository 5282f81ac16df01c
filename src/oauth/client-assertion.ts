/**
 * `private_key_jwt` (RFC 7523 §2.2 and §3, RFC 7521 §4.2): the client proves itself with a JWT
 * it signed with a key from its own `jwks` or `jwks_uri` (ChatGPT's metadata documents do this).
 * Checked: the algorithm against an allow-list (never `none`, never an HMAC that a public key
 * could forge), the signature, `iss` = `sub` = client_id, `aud` naming this authorization server
 * (its issuer, its token endpoint, or the endpoint called), `exp` present and near, and `jti`
 * used once: it is kept in the store until the assertion expires, so a replay on any instance
 * is refused.
 */
import { createHash } from "node:crypto";
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  errors,
  type JSONWebKeySet,
  type JWK,
  type JWTVerifyGetKey,
  jwtVerify,
} from "jose";
import { type CacheRegistry, TtlCache } from "../cache/ttl-cache.js";
import type { Store } from "../store/store.js";
import type { ClientRecord } from "./clients.js";
import { OAuthError } from "./errors.js";
import { type RemoteJson, RemoteJsonError } from "./remote-json.js";

/** RFC 7523 §2.2 `client_assertion_type`. */
export const JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** Asymmetric signature algorithms accepted on client assertions (advertised in metadata). */
export const ASSERTION_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
] as const;

/** An assertion lives at most this long from now (RFC 7523 §3: the server may bound it). */
export const MAX_ASSERTION_LIFETIME_SECONDS = 300;
/** Clocks of client and gateway may disagree by this much. */
const CLOCK_TOLERANCE_SECONDS = 30;
/** Compact JWTs beyond this are not assertions. */
const MAX_ASSERTION_CHARS = 8 * 1024;
/** A JWK set bigger than this is not a client's signing keys. */
const MAX_JWKS_BYTES = 64 * 1024;
/** Key sets fetched from jwks_uri kept in memory (bounded: client_ids are attacker-chosen). */
const MAX_CACHED_KEY_SETS = 500;
/**
 * A kid not in the cached set refetches the set at once (the client rotated its key), but not
 * again for this long: a stream of unknown kids costs one fetch per period, not one per request.
 */
const REFETCH_COOLDOWN_SECONDS = 30;
/** A set fetched without caching headers that allow it is still kept this long. */
const MIN_KEY_SET_CACHE_SECONDS = 30;

const JTI_NS = "assertion_jti";

const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/** Why a JWK may not be a client's published signing key, or undefined. */
export function publicKeyProblem(jwk: Record<string, unknown>): string | undefined {
  if (!["RSA", "EC", "OKP"].includes(String(jwk.kty))) return "keys must be RSA, EC or OKP public keys";
  if (PRIVATE_MEMBERS.some((m) => m in jwk)) return "a key carries private key material";
  if (jwk.use !== undefined && jwk.use !== "sig") return "a key's use is not sig";
  return undefined;
}

const fail = (description: string, cause?: unknown) =>
  new OAuthError("invalid_client", `client assertion: ${description}`, { cause });

export interface AssertionVerifierDeps {
  store: Store;
  remote: RemoteJson;
  issuer: string;
  /** Where /metrics finds the key set cache. */
  caches?: CacheRegistry;
}

export class ClientAssertionVerifier {
  private readonly fetched: TtlCache<JWTVerifyGetKey>;
  /** jwks_uri refetched for an unknown kid lately (a cooldown, not worth a metric). */
  private readonly refetched = new TtlCache<true>("client_key_refetches", MAX_CACHED_KEY_SETS);

  constructor(private readonly deps: AssertionVerifierDeps) {
    this.fetched = new TtlCache<JWTVerifyGetKey>("client_key_sets", MAX_CACHED_KEY_SETS, {
      registry: deps.caches,
    });
  }

  /**
   * Verifies `assertion` as `client`'s proof at `endpointUrl`; throws invalid_client (401) with
   * the reason. Spends the assertion's `jti`, so call it once per request.
   */
  async verify(client: ClientRecord, assertion: string, endpointUrl: string): Promise<void> {
    if (assertion.length > MAX_ASSERTION_CHARS) throw fail("too large");
    const alg = this.algorithm(client, assertion);
    const claims = await this.verifySignature(client, assertion, alg, endpointUrl);
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.exp !== "number") throw fail("exp is required");
    if (claims.exp - now > MAX_ASSERTION_LIFETIME_SECONDS + CLOCK_TOLERANCE_SECONDS) {
      throw fail(`exp is more than ${MAX_ASSERTION_LIFETIME_SECONDS} s away; sign a short-lived assertion`);
    }
    if (typeof claims.jti !== "string" || !claims.jti) throw fail("jti is required");
    const key = createHash("sha256").update(`${client.client_id}\n${claims.jti}`).digest("base64url");
    const ttl = Math.max(1, claims.exp - now + CLOCK_TOLERANCE_SECONDS);
    if (!(await this.deps.store.putIfAbsent(JTI_NS, key, { at: now }, ttl))) {
      throw fail("this jti was already used; sign a new assertion for every request");
    }
  }

  private algorithm(client: ClientRecord, assertion: string): string {
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(assertion).alg;
    } catch (err) {
      throw fail("not a signed JWT", err);
    }
    if (!ASSERTION_ALGORITHMS.includes(alg as (typeof ASSERTION_ALGORITHMS)[number])) {
      throw fail(`algorithm ${String(alg)} is not accepted (${ASSERTION_ALGORITHMS.join(", ")})`);
    }
    const registered = client.token_endpoint_auth_signing_alg;
    if (registered && alg !== registered) {
      throw fail(`this client signs with ${registered}, not ${String(alg)}`);
    }
    return alg as string;
  }

  private async verifySignature(client: ClientRecord, assertion: string, alg: string, endpointUrl: string) {
    const options = {
      algorithms: [alg],
      issuer: client.client_id,
      subject: client.client_id,
      audience: [this.deps.issuer, `${this.deps.issuer}/token`, endpointUrl],
      requiredClaims: ["exp", "jti"],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
    };
    const attempt = async (keys: JWTVerifyGetKey) => (await jwtVerify(assertion, keys, options)).payload;
    try {
      return await attempt(await this.keysOf(client));
    } catch (err) {
      // A key the cached set lacks may be a rotation: fetch the set again, once in a while.
      if (err instanceof errors.JWKSNoMatchingKey && client.jwks_uri && this.mayRefetch(client.jwks_uri)) {
        try {
          return await attempt(await this.keysOf(client, true));
        } catch (again) {
          throw this.explain(again);
        }
      }
      throw this.explain(err);
    }
  }

  private explain(err: unknown): OAuthError {
    if (err instanceof OAuthError) return err;
    if (err instanceof errors.JWTExpired) return fail("expired", err);
    if (err instanceof errors.JWTClaimValidationFailed) {
      const claim = err.claim;
      if (claim === "iss" || claim === "sub") return fail(`${claim} must be the client_id`, err);
      if (claim === "aud")
        return fail("aud must be this authorization server's issuer or token endpoint", err);
      return fail(`${claim} is missing or invalid`, err);
    }
    if (err instanceof errors.JWKSNoMatchingKey)
      return fail("no key of the client matches its kid and alg", err);
    if (err instanceof errors.JWKSMultipleMatchingKeys)
      return fail("several of the client's keys match; send a kid", err);
    if (err instanceof errors.JWSSignatureVerificationFailed) {
      return fail("the signature does not verify with the client's keys", err);
    }
    if (err instanceof errors.JOSEError) return fail("malformed", err);
    throw err;
  }

  private mayRefetch(url: string): boolean {
    if (this.refetched.get(url)) return false;
    this.refetched.set(url, true, REFETCH_COOLDOWN_SECONDS * 1000);
    return true;
  }

  private async keysOf(client: ClientRecord, refetch = false): Promise<JWTVerifyGetKey> {
    if (client.jwks) return createLocalJWKSet(client.jwks as JSONWebKeySet);
    const url = client.jwks_uri;
    if (!url) throw fail("the client has no keys (jwks or jwks_uri)");
    const cached = refetch ? undefined : this.fetched.get(url);
    if (cached) return cached;
    if (!this.deps.remote.isFetchable(url)) throw fail("jwks_uri must be an https URL");
    let fetched: Awaited<ReturnType<RemoteJson["fetch"]>>;
    try {
      fetched = await this.deps.remote.fetch(new URL(url), "client's jwks_uri", MAX_JWKS_BYTES);
    } catch (err) {
      if (err instanceof RemoteJsonError) throw fail(err.message, err);
      throw err;
    }
    const keys = this.keySet(fetched.document);
    // Cached by its headers, but at least briefly: every token request of a client would fetch it.
    this.fetched.set(url, keys, Math.max(fetched.cacheSeconds, MIN_KEY_SET_CACHE_SECONDS) * 1000);
    return keys;
  }

  private keySet(document: unknown): JWTVerifyGetKey {
    const keys = (document as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys) || keys.length === 0) throw fail("the client's jwks_uri holds no JWK set");
    const usable = keys.filter(
      (k): k is JWK => typeof k === "object" && k !== null && !publicKeyProblem(k as Record<string, unknown>),
    );
    if (!usable.length) throw fail("the client's jwks_uri holds no usable public signing key");
    return createLocalJWKSet({ keys: usable });
  }
}
