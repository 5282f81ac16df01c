/**
 * Dynamic client registration (RFC 7591) and its management protocol (RFC 7592).
 * Framework-free: the HTTP adapter passes the parsed body and the bearer token it found.
 */
import { randomUUID } from "node:crypto";
import { z } from "zod";
import { hashSecret, newSecret, secretMatches } from "../crypto/secrets.js";
import type { Audit } from "../ops/audit.js";
import { ASSERTION_ALGORITHMS, publicKeyProblem } from "./client-assertion.js";
import { type ClientMetadata, type ClientRecord, ClientStore } from "./clients.js";
import { OAuthError } from "./errors.js";
import { DEVICE_CODE_GRANT } from "./grants/device-code.js";
import { inferApplicationType, type RedirectUriPolicy, redirectUriProblem } from "./redirect-uri.js";

const text = (max: number) => z.string().trim().min(1).max(max);
const httpsUrl = z
  .string()
  .max(2000)
  .refine((v) => /^https?:\/\//i.test(v), "must be an http(s) URL");

/** What a client may ask for. Unknown members are ignored, as RFC 7591 §2 allows. */
const metadataSchema = z.object({
  // Required for the code grant (below); a device-only client (RFC 8628) has no redirects.
  redirect_uris: z.array(z.string().max(2000)).max(20).default([]),
  token_endpoint_auth_method: z
    .enum(["none", "client_secret_basic", "client_secret_post", "private_key_jwt"], {
      message:
        "token_endpoint_auth_method must be none, client_secret_basic, client_secret_post or private_key_jwt",
    })
    .default("client_secret_basic"),
  application_type: z
    .enum(["web", "native"], { message: "application_type must be web or native" })
    .optional(),
  grant_types: z
    .array(
      z.enum(["authorization_code", "refresh_token", DEVICE_CODE_GRANT], {
        message: `supported grant_types: authorization_code, refresh_token, ${DEVICE_CODE_GRANT}`,
      }),
    )
    .min(1)
    .default(["authorization_code", "refresh_token"]),
  response_types: z
    .array(z.literal("code", { message: "only the code response type is supported" }))
    .default(["code"]),
  client_name: text(200).optional(),
  client_uri: httpsUrl.optional(),
  logo_uri: httpsUrl.optional(),
  tos_uri: httpsUrl.optional(),
  policy_uri: httpsUrl.optional(),
  scope: z.string().max(1000).optional(),
  contacts: z.array(z.string().max(320)).max(10).optional(),
  software_id: text(200).optional(),
  software_version: text(100).optional(),
  // private_key_jwt (RFC 7591 §2, RFC 7523): the keys its assertions are signed with.
  jwks: z
    .object(
      { keys: z.array(z.record(z.string(), z.unknown())).min(1).max(10) },
      { message: "jwks must be a JWK set" },
    )
    .optional(),
  jwks_uri: z.string().max(2000).optional(),
  token_endpoint_auth_signing_alg: z
    .enum(ASSERTION_ALGORITHMS, {
      message: `token_endpoint_auth_signing_alg must be one of ${ASSERTION_ALGORITHMS.join(", ")}`,
    })
    .optional(),
});

/** What decides whether metadata is acceptable beyond its shape: the deployment's own rules. */
export interface MetadataRules {
  redirect: RedirectUriPolicy;
  /** Whether a jwks_uri is one the gateway would fetch (https; http on loopback in tests). */
  fetchable: (url: string) => boolean;
}

/** RFC 6750 §3 challenges for the bearer-protected registration endpoints. */
const BEARER_CHALLENGE = 'Bearer realm="mcp-oauth-gateway"';
const INVALID_TOKEN_CHALLENGE = 'Bearer realm="mcp-oauth-gateway", error="invalid_token"';

export interface RegistrationPolicy {
  enabled: boolean;
  initialAccessToken?: string;
  /** Client lifetime in seconds; 0 = never expires. */
  clientTtlSeconds: number;
  issuer: string;
  rules: MetadataRules;
}

export type RegistrationResponse = Record<string, unknown>;

/** Validates client metadata; throws invalid_redirect_uri / invalid_client_metadata. */
export function parseClientMetadata(body: unknown, rules: MetadataRules): ClientMetadata {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new OAuthError("invalid_client_metadata", "the request body must be a JSON object");
  }
  const parsed = metadataSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = String(issue?.path[0] ?? "metadata");
    const code = field === "redirect_uris" ? "invalid_redirect_uri" : "invalid_client_metadata";
    throw new OAuthError(code, `${field}: ${issue?.message ?? "invalid"}`);
  }
  const { jwks, jwks_uri, token_endpoint_auth_signing_alg, application_type, ...metadata } = parsed.data;
  const applicationType = application_type ?? inferApplicationType(metadata.redirect_uris, rules.redirect);
  for (const uri of metadata.redirect_uris) {
    const problem = redirectUriProblem(uri, applicationType, rules.redirect);
    if (problem) throw new OAuthError("invalid_redirect_uri", problem);
  }
  const redirects = metadata.grant_types.includes("authorization_code");
  if (!redirects && !metadata.grant_types.includes(DEVICE_CODE_GRANT)) {
    throw new OAuthError(
      "invalid_client_metadata",
      `grant_types must include authorization_code or ${DEVICE_CODE_GRANT}`,
    );
  }
  if (redirects && metadata.redirect_uris.length === 0) {
    throw new OAuthError("invalid_redirect_uri", "redirect_uris: at least one redirect URI is required");
  }
  const result: ClientMetadata = { ...metadata, application_type: applicationType };
  if (metadata.token_endpoint_auth_method === "private_key_jwt") {
    Object.assign(result, keyMetadata(jwks, jwks_uri, rules), {
      ...(token_endpoint_auth_signing_alg ? { token_endpoint_auth_signing_alg } : {}),
    });
  }
  return result;
}

/** private_key_jwt needs exactly one key source (RFC 7591 §2), holding public keys only. */
function keyMetadata(
  jwks: { keys: Array<Record<string, unknown>> } | undefined,
  jwksUri: string | undefined,
  rules: MetadataRules,
): Pick<ClientMetadata, "jwks" | "jwks_uri"> {
  const invalid = (d: string) => new OAuthError("invalid_client_metadata", d);
  if (jwks && jwksUri) throw invalid("give jwks or jwks_uri, not both");
  if (jwksUri) {
    if (!rules.fetchable(jwksUri) || !URL.canParse(jwksUri) || jwksUri.includes("#")) {
      throw invalid("jwks_uri must be an https URL without a fragment");
    }
    return { jwks_uri: jwksUri };
  }
  if (!jwks) throw invalid("private_key_jwt needs the client's public keys in jwks or jwks_uri");
  for (const key of jwks.keys) {
    const problem = publicKeyProblem(key);
    if (problem) throw invalid(`jwks: ${problem}`);
  }
  return { jwks: jwks as ClientMetadata["jwks"] };
}

export class Registrar {
  constructor(
    private readonly clients: ClientStore,
    private readonly policy: RegistrationPolicy,
    /** Called when a client is deleted, to revoke every token it holds. */
    private readonly onDelete: (clientId: string) => Promise<void>,
    private readonly audit: Audit,
  ) {}

  /** POST /register. `bearer` is the Authorization bearer token, if any. */
  async register(body: unknown, bearer: string | undefined): Promise<RegistrationResponse> {
    if (!this.policy.enabled) {
      throw new OAuthError("access_denied", "dynamic client registration is turned off on this gateway", {
        status: 403,
      });
    }
    if (this.policy.initialAccessToken !== undefined) {
      if (!bearer || !secretMatches(bearer, hashSecret(this.policy.initialAccessToken))) {
        throw new OAuthError("invalid_token", "registration needs a valid initial access token", {
          status: 401,
          headers: { "WWW-Authenticate": bearer ? INVALID_TOKEN_CHALLENGE : BEARER_CHALLENGE },
        });
      }
    }
    const metadata = parseClientMetadata(body, this.policy.rules);
    const now = Math.floor(Date.now() / 1000);
    const clientSecret = ClientStore.usesSecret(metadata) ? newSecret() : undefined;
    const registrationToken = newSecret();
    const record: ClientRecord = {
      ...metadata,
      client_id: randomUUID(),
      client_secret_hash: clientSecret ? hashSecret(clientSecret) : undefined,
      registration_token_hash: hashSecret(registrationToken),
      client_id_issued_at: now,
      client_secret_expires_at: this.policy.clientTtlSeconds ? now + this.policy.clientTtlSeconds : 0,
      source: "dcr",
    };
    await this.clients.save(record);
    this.audit.emit({
      type: "client.registered",
      client_id: record.client_id,
      client_name: record.client_name,
      auth_method: record.token_endpoint_auth_method,
    });
    return this.describe(record, { clientSecret, registrationToken });
  }

  /** GET /register/{client_id}. */
  async read(clientId: string, bearer: string | undefined): Promise<RegistrationResponse> {
    const client = await this.authorize(clientId, bearer);
    return this.describe(client, {});
  }

  /** PUT /register/{client_id}: replaces the metadata (RFC 7592 §2.2). */
  async update(clientId: string, bearer: string | undefined, body: unknown): Promise<RegistrationResponse> {
    const client = await this.authorize(clientId, bearer);
    const b = (body ?? {}) as Record<string, unknown>;
    if (typeof body === "object" && body !== null && b.client_id !== clientId) {
      throw new OAuthError("invalid_request", "the body's client_id must match the client being updated");
    }
    if (b.client_secret !== undefined) {
      if (
        typeof b.client_secret !== "string" ||
        !client.client_secret_hash ||
        !secretMatches(b.client_secret, client.client_secret_hash)
      ) {
        throw new OAuthError("invalid_request", "client_secret does not match the one issued");
      }
    }
    const metadata = parseClientMetadata(body, this.policy.rules);
    const needsSecret = ClientStore.usesSecret(metadata) && !client.client_secret_hash;
    const clientSecret = needsSecret ? newSecret() : undefined;
    const updated: ClientRecord = {
      ...metadata,
      client_id: client.client_id,
      client_secret_hash: ClientStore.usesSecret(metadata)
        ? clientSecret
          ? hashSecret(clientSecret)
          : client.client_secret_hash
        : undefined,
      registration_token_hash: client.registration_token_hash,
      client_id_issued_at: client.client_id_issued_at,
      client_secret_expires_at: client.client_secret_expires_at,
      source: client.source,
    };
    await this.clients.save(updated);
    this.audit.emit({ type: "client.updated", client_id: clientId });
    return this.describe(updated, { clientSecret });
  }

  /** DELETE /register/{client_id}: the client and every token it holds are gone. */
  async remove(clientId: string, bearer: string | undefined): Promise<void> {
    await this.authorize(clientId, bearer);
    await this.clients.delete(clientId);
    await this.onDelete(clientId);
  }

  /** 401 without a token, 404 for an unknown client, 403 for another client's token. */
  private async authorize(clientId: string, bearer: string | undefined): Promise<ClientRecord> {
    if (!bearer) {
      throw new OAuthError("invalid_token", "a registration access token is required", {
        status: 401,
        headers: { "WWW-Authenticate": BEARER_CHALLENGE },
      });
    }
    const client = await this.clients.get(clientId);
    if (client?.source !== "dcr") {
      throw new OAuthError("invalid_client", "no such client", { status: 404 });
    }
    if (!client.registration_token_hash || !secretMatches(bearer, client.registration_token_hash)) {
      throw new OAuthError("invalid_token", "the registration access token is not valid for this client", {
        status: 403,
        headers: { "WWW-Authenticate": INVALID_TOKEN_CHALLENGE },
      });
    }
    return client;
  }

  private describe(client: ClientRecord, secrets: { clientSecret?: string; registrationToken?: string }) {
    const { client_secret_hash, registration_token_hash, source, ...metadata } = client;
    return {
      ...metadata,
      ...(secrets.clientSecret ? { client_secret: secrets.clientSecret } : {}),
      ...(secrets.registrationToken ? { registration_access_token: secrets.registrationToken } : {}),
      registration_client_uri: `${this.policy.issuer}/register/${encodeURIComponent(client.client_id)}`,
    };
  }
}
