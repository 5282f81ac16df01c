/**
 * What GitHub Copilot CLI checks (RFC 8414 §3.3, strictly): the `issuer` in the authorization
 * server metadata is, character for character, the authorization server URL the protected
 * resource metadata named, at every URL a client derives from it (RFC 8414 §3.1's path-inserted
 * form, OpenID Connect discovery's forms), and it is the `iss` of authorization responses
 * (RFC 9207) and of the tokens. Walked from a service URL as a client walks it, for the ways a
 * deployment spells its public URL: the gateway's own address, a trailing slash, capitals, host
 * routing, and a path prefix behind a real nginx. The MCP SDK v2 client's discovery, which
 * refuses a mismatched issuer, is run on each too.
 */
import { promises as dns } from "node:dns";
import { discoverAuthorizationServerMetadata } from "@modelcontextprotocol/client";
import { decodeJwt } from "jose";
import { Agent, fetch as undiciFetch } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { checkBinary } from "../support/binaries.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { Browser, followAuthorization, pkcePair, REDIRECT_URI } from "../support/oauth-client.js";
import { NGINX, nginxServerConf, type RunningProxy, startNginxWith } from "../support/proxies.js";
import { freePort } from "../support/upstream.js";
import { addLocalUser, LOGIN, SERVICES } from "./helpers.js";

/** Made-up host names (`*.mcp.test`, and `localhost` in any case) reach this machine's 127.0.0.1. */
const agent = new Agent({
  connect: {
    lookup: (hostname, options, callback) => {
      const local = hostname.toLowerCase() === "localhost" || hostname.toLowerCase().endsWith(".mcp.test");
      if (!local) {
        dns.lookup(hostname, { all: true }).then(
          (all) =>
            options.all ? callback(null, all) : callback(null, all[0]?.address ?? "", all[0]?.family),
          (err: Error) => callback(err, "", 0),
        );
        return;
      }
      if (options.all) callback(null, [{ address: "127.0.0.1", family: 4 }]);
      else callback(null, "127.0.0.1", 4);
    },
  },
});
const fetchVia = ((input: string | URL | Request, init?: RequestInit) =>
  undiciFetch(input as string, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch;

/** The discovery URLs of an authorization server, as RFC 8414 §3.1 and OIDC Discovery §4 place them. */
function discoveryUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/$/, "");
  if (!path) {
    return [
      `${url.origin}/.well-known/oauth-authorization-server`,
      `${url.origin}/.well-known/openid-configuration`,
    ];
  }
  return [
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
    `${url.origin}/.well-known/openid-configuration${path}`,
    `${url.origin}${path}/.well-known/openid-configuration`,
    // What clients of MCP 2025-03-26 did: the well-known suffix appended to the server's URL.
    `${url.origin}${path}/.well-known/oauth-authorization-server`,
  ];
}

const getJson = async (url: string) => {
  const res = await fetchVia(url, {
    headers: { accept: "application/json", "mcp-protocol-version": "2025-11-25" },
  });
  const text = await res.text();
  return {
    status: res.status,
    body: (res.headers.get("content-type") ?? "").includes("json") ? JSON.parse(text) : text,
  };
};

interface Deployment {
  serviceUrl: string;
  /** Whether to sign in through the pages too (every deployment here does). */
  login: boolean;
  close(): Promise<void>;
}

async function gatewayAt(publicUrl: (port: number) => string, tree: Record<string, unknown> = {}) {
  const port = await freePort();
  const gw = await startFullGateway({ ...SERVICES, ...tree, public_url: publicUrl(port) }, { port });
  await addLocalUser(gw);
  return { gw, port };
}

const closeGateway = (gw: RunningGateway) => () => gw.close({ wipe: true });

const nginxCheck = checkBinary(NGINX);

/** nginx serving the gateway under /gw (prefix stripped), with /.well-known passed on as it is. */
const PREFIX_CONF = nginxServerConf(`
    location /gw/ { proxy_pass {{GATEWAY}}/; proxy_set_header Host $http_host; }
    location /.well-known/ { proxy_pass {{GATEWAY}}; proxy_set_header Host $http_host; }`);

const DEPLOYMENTS: Array<[string, () => Promise<Deployment>, { skip?: boolean }]> = [
  [
    "public_url is the gateway's own address",
    async () => {
      const { gw } = await gatewayAt((p) => `http://127.0.0.1:${p}`);
      return { serviceUrl: `${gw.url}/notes/mcp`, login: true, close: closeGateway(gw) };
    },
    {},
  ],
  [
    "public_url configured with a trailing slash",
    async () => {
      const { gw } = await gatewayAt((p) => `http://127.0.0.1:${p}/`);
      return { serviceUrl: `${gw.url}/notes/mcp`, login: true, close: closeGateway(gw) };
    },
    {},
  ],
  [
    "public_url spelled with capitals",
    async () => {
      const { gw, port } = await gatewayAt((p) => `HTTP://LocalHost:${p}`);
      return { serviceUrl: `http://localhost:${port}/notes/mcp`, login: true, close: closeGateway(gw) };
    },
    {},
  ],
  [
    "host routing ({service}.{base_domain}, auth.{base_domain})",
    async () => {
      const port = await freePort();
      const gw = await startFullGateway(
        { ...SERVICES, public_url: `http://auth.mcp.test:${port}`, base_domain: `mcp.test:${port}` },
        { port },
      );
      await addLocalUser(gw);
      return { serviceUrl: `http://notes.mcp.test:${port}/mcp`, login: true, close: closeGateway(gw) };
    },
    {},
  ],
  [
    "a path prefix behind nginx, configured with a trailing slash",
    async () => {
      const nginxPort = await freePort();
      const { gw } = await gatewayAt(() => `http://127.0.0.1:${nginxPort}/gw/`);
      let proxy: RunningProxy;
      try {
        proxy = await startNginxWith(PREFIX_CONF, { PORT: nginxPort, GATEWAY: gw.url });
      } catch (err) {
        await gw.close({ wipe: true });
        throw err;
      }
      return {
        serviceUrl: `http://127.0.0.1:${nginxPort}/gw/notes/mcp`,
        login: true,
        close: async () => {
          await proxy.close();
          await gw.close({ wipe: true });
        },
      };
    },
    { skip: !nginxCheck.available },
  ],
];

describe("the issuer is the same string everywhere a client meets it", () => {
  const open: Deployment[] = [];
  afterAll(async () => {
    for (const d of open) await d.close();
  });

  for (const [name, start, { skip }] of DEPLOYMENTS) {
    it.skipIf(skip)(name, async () => {
      const deployment = await start();
      open.push(deployment);

      // 1. The challenge names the resource metadata; 2. it names the authorization server.
      const challenge = await fetchVia(deployment.serviceUrl, { method: "POST" });
      expect(challenge.status).toBe(401);
      const prmUrl = /resource_metadata="([^"]+)"/.exec(challenge.headers.get("www-authenticate") ?? "")?.[1];
      expect(prmUrl, "resource_metadata in the challenge").toBeTruthy();
      const prm = await getJson(prmUrl as string);
      expect(prm.status).toBe(200);
      const issuer = prm.body.authorization_servers[0] as string;
      expect(issuer).not.toMatch(/\/$/);
      expect(issuer).toBe(issuer.toLowerCase());

      // 3. Every discovery URL answers with exactly that issuer (Copilot CLI compares literally).
      for (const url of discoveryUrls(issuer)) {
        const meta = await getJson(url);
        expect(meta.status, url).toBe(200);
        expect(meta.body.issuer, url).toBe(issuer);
      }
      // 4. The SDK's own discovery, which throws IssuerMismatchError on any difference.
      const sdk = await discoverAuthorizationServerMetadata(issuer, { fetchFn: fetchVia });
      expect(sdk?.issuer).toBe(issuer);
      const meta = (await getJson(discoveryUrls(issuer)[0] as string)).body as Record<string, string>;
      for (const key of ["authorization_endpoint", "token_endpoint", "registration_endpoint", "jwks_uri"]) {
        expect(meta[key]?.startsWith(`${issuer}/`), key).toBe(true);
      }

      // 5. Authorization responses carry it as iss (RFC 9207), errors included.
      const registered = await fetchVia(meta.registration_endpoint as string, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          client_name: "Copilot",
          redirect_uris: [REDIRECT_URI],
          token_endpoint_auth_method: "none",
        }),
      });
      expect(registered.status).toBe(201);
      const client = (await registered.json()) as { client_id: string };
      const refused = new URL(meta.authorization_endpoint as string);
      for (const [k, v] of Object.entries({
        client_id: client.client_id,
        redirect_uri: REDIRECT_URI,
        response_type: "token",
        state: "s",
      }))
        refused.searchParams.set(k, v);
      const error = await fetchVia(refused.toString(), { redirect: "manual" });
      expect(error.status).toBe(302);
      const back = new URL(error.headers.get("location") ?? "");
      expect(back.searchParams.get("error")).toBe("unsupported_response_type");
      expect(back.searchParams.get("iss")).toBe(issuer);
      if (!deployment.login) return;

      // 6. A real login: the code comes back with iss, and the access token's iss is the issuer.
      const { verifier, challenge: pkce } = pkcePair();
      const authorize = new URL(meta.authorization_endpoint as string);
      for (const [k, v] of Object.entries({
        client_id: client.client_id,
        redirect_uri: REDIRECT_URI,
        response_type: "code",
        code_challenge: pkce,
        code_challenge_method: "S256",
        resource: prm.body.resource as string,
      }))
        authorize.searchParams.set(k, v);
      const callback = await followAuthorization(
        new URL(issuer).origin,
        new Browser({}, fetchVia),
        authorize.toString(),
        LOGIN,
      );
      expect(callback.searchParams.get("iss")).toBe(issuer);
      const token = await fetchVia(meta.token_endpoint as string, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "authorization_code",
          client_id: client.client_id,
          code: callback.searchParams.get("code") as string,
          code_verifier: verifier,
          redirect_uri: REDIRECT_URI,
        }),
      });
      const tokens = (await token.json()) as { access_token: string };
      expect(token.status, JSON.stringify(tokens)).toBe(200);
      expect(decodeJwt(tokens.access_token).iss).toBe(issuer);
      // And the service accepts it, at the URL the client started from.
      const call = await fetchVia(deployment.serviceUrl, {
        method: "POST",
        headers: {
          authorization: `Bearer ${tokens.access_token}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
      });
      expect(call.status, "not refused by the token check").not.toBe(401);
    });
  }
});
