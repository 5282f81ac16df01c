/**
 * What both relay engines share: the remote endpoint (URL, credentials, step-up), the SDK v2
 * Streamable HTTP transport on it, and errors turned into JSON-RPC errors for the stdio client.
 */
import {
  ProtocolError,
  SdkError,
  SdkErrorCode,
  SdkHttpError,
  StreamableHTTPClientTransport,
} from "@modelcontextprotocol/client";
import type { CredentialStore } from "./credentials.js";
import { fetchNamingFailures } from "./network.js";
import { LoginRequiredError } from "./provider.js";
import { StoredTokenAuth } from "./remote-auth.js";
import { INTERNAL_ERROR, METHOD_NOT_FOUND, RELAY_ERROR } from "./stdio-channel.js";
import type { StepUp } from "./step-up.js";

export interface Remote {
  serverUrl: string;
  store: CredentialStore;
  stepUp: StepUp;
  /** Diagnostics (stderr). */
  log(message: string): void;
}

/** A transport to the remote endpoint with the cached login; scope challenges are thrown, for StepUp. */
export function remoteTransport(remote: Remote): StreamableHTTPClientTransport {
  return new StreamableHTTPClientTransport(new URL(remote.serverUrl), {
    authProvider: new StoredTokenAuth(remote.store, remote.serverUrl, (why) => remote.stepUp.relogin(why)),
    onInsufficientScope: "throw",
    fetch: fetchNamingFailures,
  });
}

export interface JsonRpcError {
  code: number;
  message: string;
  data?: unknown;
}

/** An error from the remote side (or from the relay itself) as the JSON-RPC error to answer with. */
export function toJsonRpcError(err: unknown): JsonRpcError {
  if (err instanceof ProtocolError) {
    return { code: err.code, message: err.message, ...(err.data !== undefined && { data: err.data }) };
  }
  if (err instanceof SdkError && err.code === SdkErrorCode.MethodNotSupportedByProtocolVersion) {
    return { code: METHOD_NOT_FOUND, message: `Method not found: ${err.message}` };
  }
  if (err instanceof LoginRequiredError || err instanceof SdkHttpError) {
    return { code: RELAY_ERROR, message: (err as Error).message };
  }
  if (err instanceof Error)
    return { code: err instanceof SdkError ? INTERNAL_ERROR : RELAY_ERROR, message: err.message };
  return { code: RELAY_ERROR, message: String(err) };
}
