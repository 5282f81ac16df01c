/**
 * Token revocation (RFC 7009) at the endpoint the authorization server advertises in its
 * metadata (RFC 8414 `revocation_endpoint`), found by the SDK's discovery from the MCP server URL.
 */
import { discoverOAuthServerInfo, type OAuthClientInformationMixed } from "@modelcontextprotocol/client";
import { fetchNamingFailures } from "./network.js";

/** Revokes `token` for `client`; throws with a readable reason when the server has no endpoint or refuses. */
export async function revokeToken(
  serverUrl: string,
  client: OAuthClientInformationMixed,
  token: string,
  hint: "refresh_token" | "access_token",
): Promise<void> {
  const { authorizationServerMetadata: metadata } = await discoverOAuthServerInfo(serverUrl, {
    fetchFn: fetchNamingFailures,
  });
  // OIDC discovery documents are typed without it, but carry it just the same.
  const endpoint = (metadata as { revocation_endpoint?: string } | undefined)?.revocation_endpoint;
  if (!endpoint) throw new Error("the authorization server advertises no revocation endpoint");
  const body = new URLSearchParams({ token, token_type_hint: hint });
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
  const method = (client as { token_endpoint_auth_method?: string }).token_endpoint_auth_method;
  if (client.client_secret && method !== "client_secret_post") {
    // RFC 6749 §2.3.1: form-encode each part before base64.
    const pair = `${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`;
    headers.authorization = `Basic ${Buffer.from(pair).toString("base64")}`;
  } else {
    body.set("client_id", client.client_id);
    if (client.client_secret) body.set("client_secret", client.client_secret);
  }
  const res = await fetchNamingFailures(endpoint, { method: "POST", headers, body });
  if (!res.ok) {
    const text = await res.text();
    let reason = `HTTP ${res.status}`;
    try {
      const err = JSON.parse(text) as { error?: string; error_description?: string };
      if (err.error) reason = err.error_description ? `${err.error}: ${err.error_description}` : err.error;
    } catch {
      // Not OAuth error JSON: the status says enough.
    }
    throw new Error(`revocation refused (${reason})`);
  }
}
