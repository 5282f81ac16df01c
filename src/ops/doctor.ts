/**
 * `mcp-gateway doctor`: what would go wrong at start-up or on the first request, found before
 * it does, against the real things (the store, the identity provider, each service's upstream
 * or command). Each check is one line: ok, warn (works, but probably not as meant) or fail.
 */
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { request } from "undici";
import { readSecretFile } from "../bridge/secret-file.js";
import type { GatewayConfig, ServiceConfig } from "../config/schema.js";
import {
  type EncryptionSecret,
  resolveEncryptionSecret,
  secretFilePath,
} from "../crypto/encryption-secret.js";
import { type SealedJwk, unsealJwk } from "../crypto/sealing.js";
import { createIdentityProvider } from "../idp/create.js";
import { isLoopbackHttp } from "../net/loopback.js";
import { openStore } from "../store/open.js";
import type { Store } from "../store/store.js";
import { KEYS_NAMESPACE } from "../tokens/key-set.js";

export type Verdict = "ok" | "warn" | "fail";
export interface Finding {
  verdict: Verdict;
  /** What was checked, e.g. `store`, `service notes`. */
  check: string;
  detail: string;
}

/** How long an upstream may take to answer the probe. */
const PROBE_TIMEOUT_MS = 3_000;

const message = (err: unknown) => {
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  return e.cause?.code ?? e.code ?? e.message;
};

function publicUrl(config: GatewayConfig): Finding {
  const url = new URL(config.public_url as string);
  if (url.protocol === "https:" || isLoopbackHttp(url))
    return { verdict: "ok", check: "public_url", detail: url.href };
  return {
    verdict: "warn",
    check: "public_url",
    detail: `${url.href} is plain http on a non-loopback host: MCP clients expect https (put TLS in front and set public_url to the https URL)`,
  };
}

async function storeAndLogin(config: GatewayConfig): Promise<Finding[]> {
  // Decided by the config alone: reported even when the store cannot be reached.
  const refused = sharedSecret(config);
  let store: Store;
  try {
    store = await openStore(config);
    await store.ping();
  } catch (err) {
    return [{ verdict: "fail", check: "store", detail: message(err) }, ...(refused ? [refused] : [])];
  }
  const found: Finding[] = [{ verdict: "ok", check: "store", detail: `${store.kind} ${store.location}` }];
  try {
    found.push(refused ?? (await keys(config, store)));
    try {
      const idp = await createIdentityProvider(config, store);
      found.push({ verdict: "ok", check: "login", detail: idp.displayName });
    } catch (err) {
      found.push({ verdict: "fail", check: "login", detail: message(err) });
    }
  } finally {
    await store.close();
  }
  return found;
}

/** A signing key record as the store holds it: only the fields that tell how it is kept. */
type KeyRecord = { kid?: string; created_at?: number; private_jwk?: unknown; private_sealed?: SealedJwk };

/**
 * How the private signing keys are kept: sealed with the secret `serve` would use, or (a store an
 * older version wrote) in the clear. Never creates the secret: that is `serve`'s first start.
 */
async function keys(config: GatewayConfig, store: Store): Promise<Finding> {
  const check = "keys";
  const secret = resolveEncryptionSecret(config, { generate: false });
  const records = (await store.list<Record<string, never>>(KEYS_NAMESPACE)).map(
    (e) => e.value as unknown as KeyRecord,
  );
  const plain = records.filter((r) => r.private_jwk !== undefined && r.private_sealed === undefined);
  const sealedBy = secret?.source ?? `a secret generated into ${secretFilePath(config)}`;
  if (plain.length > 0)
    return {
      verdict: "warn",
      check,
      detail: `${plain.length} signing key${plain.length > 1 ? "s" : ""} in the ${store.kind} store ${plain.length > 1 ? "are" : "is"} unsealed (written by an older version): the next \`serve\` seals ${plain.length > 1 ? "them" : "it"} with ${sealedBy}`,
    };
  const sealed = records
    .filter((r) => r.private_sealed !== undefined)
    .sort((a, b) => (b.created_at ?? 0) - (a.created_at ?? 0));
  if (sealed.length === 0)
    return {
      verdict: "ok",
      check,
      detail: `no signing key yet; \`serve\` creates one sealed with ${sealedBy}`,
    };
  return unsealsNewest(sealed[0] as KeyRecord, sealed.length, secret, config);
}

/** One unseal (one scrypt) shows that the secret is the one the keys were sealed with. */
function unsealsNewest(
  newest: KeyRecord,
  count: number,
  secret: EncryptionSecret | undefined,
  config: GatewayConfig,
): Finding {
  const check = "keys";
  if (!secret)
    return {
      verdict: "fail",
      check,
      detail: `the signing keys are sealed but ${secretFilePath(config)} is missing: restore it, or set keys.encryption_secret to the secret they were sealed with`,
    };
  try {
    unsealJwk(newest.private_sealed as SealedJwk, secret.value, newest.kid ?? "?", secret.source);
  } catch (err) {
    return { verdict: "fail", check, detail: (err as Error).message };
  }
  return {
    verdict: "ok",
    check,
    detail: `${count} signing key${count > 1 ? "s" : ""}, sealed with ${secret.source}`,
  };
}

/** Redis needs the one secret every instance shares: without it `serve` refuses to start. */
function sharedSecret(config: GatewayConfig): Finding | undefined {
  try {
    resolveEncryptionSecret(config, { generate: false });
    return undefined;
  } catch (err) {
    return { verdict: "fail", check: "keys", detail: (err as Error).message };
  }
}

/** What `serve` keeps on disk (the SQLite file, the generated secret) is for the gateway's user only. */
function fileModes(config: GatewayConfig): Finding | undefined {
  if (config.store.type !== "sqlite") return undefined;
  const files = [
    { name: "data_dir", path: resolve(config.data_dir) },
    { name: "secret", path: secretFilePath(config) },
    { name: "database", path: resolve(config.store.sqlite_path ?? join(config.data_dir, "gateway.db")) },
  ];
  const loose: string[] = [];
  for (const { name, path } of files) {
    let mode: number;
    try {
      mode = statSync(path).mode & 0o777;
    } catch {
      continue;
    }
    if (mode & 0o077) loose.push(`${name} ${path} is mode ${mode.toString(8).padStart(4, "0")}`);
  }
  if (loose.length === 0) return { verdict: "ok", check: "files", detail: "private to this user" };
  return {
    verdict: "warn",
    check: "files",
    detail: `${loose.join("; ")}: others on this machine can read them (chmod go= them)`,
  };
}

/** An executable by path (relative to the service's `cwd`), or the first one of that name on PATH. */
function findExecutable(command: string, cwd: string | undefined): string | undefined {
  const candidates =
    isAbsolute(command) || command.includes("/")
      ? [resolve(cwd ?? ".", command)]
      : (process.env.PATH ?? "")
          .split(delimiter)
          .filter(Boolean)
          .map((dir) => join(dir, command));
  return candidates.find((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * A Streamable HTTP upstream is probed with an MCP initialize, as the gateway's first client
 * would, with the upstream's own bearer (`upstream_bearer_file`) as the proxy sends it.
 */
async function probe(name: string, service: ServiceConfig): Promise<Finding> {
  const check = `service ${name}`;
  const url = service.url as string;
  let bearer: string | undefined;
  try {
    if (service.upstream_bearer_file) bearer = readSecretFile(service.upstream_bearer_file);
  } catch (err) {
    return {
      verdict: "fail",
      check,
      detail: `services.${name}.upstream_bearer_file: ${(err as Error).message}`,
    };
  }
  try {
    const res = await request(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2025-06-18",
          capabilities: {},
          clientInfo: { name: "mcp-gateway doctor", version: "1" },
        },
      }),
      headersTimeout: PROBE_TIMEOUT_MS,
      bodyTimeout: PROBE_TIMEOUT_MS,
    });
    await res.body.dump();
    const status = res.statusCode;
    if (status < 300) return { verdict: "ok", check, detail: `${url} answers initialize` };
    if (status === 401 || status === 403)
      return {
        verdict: "warn",
        check,
        detail: bearer
          ? `${url} answers ${status} to the secret in upstream_bearer_file`
          : `${url} answers ${status}: it wants credentials of its own (upstream_bearer_file), and the gateway never forwards the client's token`,
      };
    return {
      verdict: status >= 500 ? "fail" : "warn",
      check,
      detail: `${url} answers initialize with ${status}`,
    };
  } catch (err) {
    return { verdict: "fail", check, detail: `${url}: ${message(err)}` };
  }
}

function services(config: GatewayConfig): Array<Promise<Finding>> {
  return Object.entries(config.services).map(async ([name, service]): Promise<Finding> => {
    const check = `service ${name}`;
    if (!service.enabled) return { verdict: "ok", check, detail: "disabled" };
    if (service.url) return probe(name, service);
    const command = service.command as string;
    const path = findExecutable(command, service.cwd);
    if (!path) return { verdict: "fail", check, detail: `command not found: ${command}` };
    // `node /path/server.js`: a script given by absolute path must exist too.
    const script = service.args[0];
    if (script && isAbsolute(script) && !existsSync(script))
      return { verdict: "fail", check, detail: `${command} would run ${script}, which does not exist` };
    return { verdict: "ok", check, detail: `runs ${[path, ...service.args].join(" ")}` };
  });
}

/** Every check, in a stable order: public URL, store, keys, login, files, then services as configured. */
export async function diagnose(config: GatewayConfig): Promise<Finding[]> {
  const [store, probes] = await Promise.all([storeAndLogin(config), Promise.all(services(config))]);
  const files = fileModes(config);
  return [publicUrl(config), ...store, ...(files ? [files] : []), ...probes];
}
