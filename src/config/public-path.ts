/**
 * The path of `public_url` ("" or e.g. "/gw"): where a reverse proxy serves the gateway on its
 * host. The proxy strips it before a request reaches the gateway (nginx
 * `location /gw/ { proxy_pass http://gateway/; }`), so routes stay at the root, and every URL
 * the gateway hands a browser or a client carries it again: page links, form targets, redirects
 * and cookie paths (absolute URLs start with `public_url`, which already has it).
 */
export function publicPath(publicUrl: string): string {
  return new URL(publicUrl).pathname.replace(/\/+$/, "");
}
