/**
 * `offline_access` as MCP 2026-07-28 advises (SEP-2207): listed in the authorization server's
 * `scopes_supported`, never in protected resource metadata or a challenge; and when refresh
 * tokens are issued. The gateway's rule: a code redeemed by a client registered for the
 * `refresh_token` grant comes with a refresh token, whether or not the client asked for
 * offline_access (most MCP clients never do); a client not registered for that grant gets none,
 * even if it asks. offline_access is never granted as a scope of its own: it names no resource.
 */
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { registerClient } from "../support/oauth-client.js";
import { addLocalUser, obtainCode, redeem, SERVICES } from "./helpers.js";

let gw: RunningGateway;
beforeAll(async () => {
  gw = await startFullGateway(SERVICES);
  await addLocalUser(gw);
});
afterAll(async () => {
  await gw?.close({ wipe: true });
});

const NOTES = () => `${gw.url}/notes/mcp`;

describe("where offline_access is advertised", () => {
  it("is in the authorization server's scopes_supported, at both metadata locations", async () => {
    for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
      const meta = (await (await fetch(`${gw.url}${path}`)).json()) as { scopes_supported: string[] };
      expect(meta.scopes_supported, path).toContain("offline_access");
    }
  });

  it("is in no protected resource metadata and in no challenge", async () => {
    for (const service of ["notes", "files"]) {
      const prm = (await (
        await fetch(`${gw.url}/.well-known/oauth-protected-resource/${service}/mcp`)
      ).json()) as {
        scopes_supported?: string[];
      };
      expect(prm.scopes_supported ?? [], service).not.toContain("offline_access");
      const unauthenticated = await fetch(`${gw.url}/${service}/mcp`, { method: "POST" });
      expect(unauthenticated.status).toBe(401);
      expect(unauthenticated.headers.get("www-authenticate"), service).not.toMatch(/offline_access/);
    }
    // A token short of the service's scopes gets the step-up challenge: still without it.
    const client = await registerClient(gw.url);
    const tokens = await redeem(
      gw,
      client,
      await obtainCode(gw, client, { resource: NOTES(), scope: "notes:read offline_access" }),
    );
    const stepUp = await fetch(NOTES(), {
      method: "POST",
      headers: {
        authorization: `Bearer ${tokens.body.access_token}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(stepUp.status).toBe(403);
    const challenge = stepUp.headers.get("www-authenticate") ?? "";
    expect(challenge).toMatch(/insufficient_scope/);
    expect(challenge).not.toMatch(/offline_access/);
  });
});

describe("when refresh tokens are issued", () => {
  it.each([
    ["without offline_access", "notes:read notes:write"],
    ["with offline_access", "notes:read notes:write offline_access"],
  ])("a client registered for refresh_token gets one %s", async (_name, scope) => {
    const client = await registerClient(gw.url, { grant_types: ["authorization_code", "refresh_token"] });
    const res = await redeem(gw, client, await obtainCode(gw, client, { resource: NOTES(), scope }));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.refresh_token).toBeTruthy();
    // offline_access is not a resource scope: the access token does not carry it.
    expect(String(res.body.scope).split(" ").sort()).toEqual(["notes:read", "notes:write"]);
    expect(decodeJwt(res.body.access_token as string).scope).not.toMatch(/offline_access/);
  });

  it("a client registered for authorization_code only gets none, even when it asks for offline_access", async () => {
    const client = await registerClient(gw.url, { grant_types: ["authorization_code"] });
    const res = await redeem(
      gw,
      client,
      await obtainCode(gw, client, { resource: NOTES(), scope: "notes:read offline_access" }),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.access_token).toBeTruthy();
    expect(res.body.refresh_token).toBeUndefined();
  });

  it("a request for offline_access alone gets the resource's own scopes and a refresh token", async () => {
    const client = await registerClient(gw.url);
    const res = await redeem(
      gw,
      client,
      await obtainCode(gw, client, { resource: NOTES(), scope: "offline_access" }),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(String(res.body.scope).split(" ").sort()).toEqual(["notes:read", "notes:write"]);
    expect(res.body.refresh_token).toBeTruthy();
  });
});
