/**
 * The internal channel's wire form, shared by its two ends (relay.ts sends, channel.ts receives):
 * `{advertise_url path}/{service}/mcp`, the deciding instance's identity headers as its gateway
 * set them, `X-Mcp-Gateway-Cluster-From`, and the signature headers (signature.ts:
 * `X-Mcp-Gateway-Cluster-{Time,Nonce,Headers,Signature}`; the cluster secret itself is never sent).
 * The public side never lets a client set a header with the `x-mcp-gateway-` prefix
 * (src/gateway/headers.ts), so none of this can be spelt by a client through an instance.
 */

/** Every cluster header starts with this (lower case). */
export const CLUSTER_HEADER_PREFIX = "x-mcp-gateway-";

/** The relaying instance's advertise_url, for the owner's log. */
export const CLUSTER_FROM_HEADER = "x-mcp-gateway-cluster-from";

/** Path of a service's session endpoint on an instance's internal listener. */
export function relayPath(advertiseUrl: string, service: string): string {
  const base = new URL(advertiseUrl).pathname.replace(/\/+$/, "");
  return `${base}/${encodeURIComponent(service)}/mcp`;
}
