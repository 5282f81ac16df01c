/**
 * `mcp-gateway login` against authorization servers that behave as each case needs, over real
 * sockets: what the CLI registers (SEP-837 `application_type`), and how it treats the RFC 9207
 * `iss` of the authorization response in every case. RFC 9207 §2.4: a present `iss` is compared
 * to the issuer of the metadata by simple string comparison (RFC 3986 §6.2.1, so no
 * normalisation), a mismatch is refused before the code is used, and a server that advertises
 * `authorization_response_iss_parameter_supported` must send one.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUILT, runCli } from "./cli-process.js";
import { loginApproving } from "./scenario/login-flow.js";
import { modernHandler } from "./scenario/mcp-servers.js";
import { type AuthorizationServerOptions, type Scenario, startScenario } from "./scenario/oauth-scenario.js";

const run = BUILT || process.env.CI === "true";
if (!run) console.warn("skipping test/client/authorization-response.test.ts: run `npm run build` first");

describe.skipIf(!run)("login: registration metadata and the authorization response's iss", () => {
  let root: string;
  const scenarios: Scenario[] = [];
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "mcpgw-iss-"));
  });
  afterAll(async () => {
    for (const s of scenarios) await s.close();
    rmSync(root, { recursive: true, force: true });
  });

  async function scenario(options: AuthorizationServerOptions): Promise<Scenario> {
    const s = await startScenario({ as1: options }, modernHandler());
    scenarios.push(s);
    return s;
  }

  it("registers as a native application (SEP-837) with a loopback redirect URI", async () => {
    const s = await scenario({ advertiseIss: true });
    const login = await loginApproving(s.mcpUrl, join(root, "native"));
    expect(login.code).toBe(0);
    expect(s.as.as1?.registrations).toHaveLength(1);
    const body = s.as.as1?.registrations[0]?.body ?? {};
    expect(body.application_type).toBe("native");
    expect(body.token_endpoint_auth_method).toBe("none");
    expect(body.redirect_uris).toEqual([expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/callback$/)]);
    expect(body.grant_types).toEqual(expect.arrayContaining(["authorization_code", "refresh_token"]));
  });

  it("opens the browser named by $BROWSER with the authorization URL", async () => {
    const s = await scenario({ advertiseIss: true });
    const approve = join(import.meta.dirname, "conformance", "approve-browser.mjs");
    const out = await runCli(["login", s.mcpUrl, "--timeout", "20s"], join(root, "browser"), {
      env: { BROWSER: `${process.execPath} ${approve}` },
    });
    expect(out.stderr).toContain("Open this URL");
    expect(out.code).toBe(0);
    expect(out.stdout).toContain(`logged in to ${s.mcpUrl}`);
    expect(s.as.as1?.authorizeRequests).toHaveLength(1);
  });

  type Case = {
    name: string;
    advertise: boolean;
    iss: (issuer: string) => AuthorizationServerOptions["iss"];
    ok: boolean;
  };
  const cases: Case[] = [
    { name: "advertised and right", advertise: true, iss: () => "issuer", ok: true },
    { name: "advertised but missing", advertise: true, iss: () => "omit", ok: false },
    {
      name: "advertised and wrong",
      advertise: true,
      iss: () => ({ value: "https://evil.example/as1" }),
      ok: false,
    },
    { name: "not advertised and missing", advertise: false, iss: () => "omit", ok: true },
    { name: "not advertised but present and right", advertise: false, iss: () => "issuer", ok: true },
    {
      name: "not advertised but present and wrong",
      advertise: false,
      iss: () => ({ value: "https://evil.example/as1" }),
      ok: false,
    },
    { name: "with a trailing slash", advertise: true, iss: (i) => ({ value: `${i}/` }), ok: false },
    {
      name: "with an upper-case scheme",
      advertise: true,
      iss: (i) => ({ value: i.replace(/^http:/, "HTTP:") }),
      ok: false,
    },
    {
      name: "with an upper-case path",
      advertise: true,
      iss: (i) => ({ value: i.replace(/\/as1$/, "/AS1") }),
      ok: false,
    },
    {
      name: "naming the same host as localhost",
      advertise: false,
      iss: (i) => ({ value: i.replace("127.0.0.1:", "localhost:") }),
      ok: false,
    },
    {
      name: "not advertised, with a trailing slash",
      advertise: false,
      iss: (i) => ({ value: `${i}/` }),
      ok: false,
    },
  ];

  for (const c of cases) {
    it(`iss ${c.name}: ${c.ok ? "accepted" : "refused before the code is used"}`, async () => {
      const s = await startScenario({ as1: { advertiseIss: c.advertise } }, modernHandler());
      scenarios.push(s);
      const as1 = s.as.as1;
      if (!as1) throw new Error("no as1");
      // The forged value is built from the real issuer, known once the server listens.
      as1.options.iss = c.iss(as1.issuer);
      const dir = join(root, c.name.replace(/\W+/g, "-"));
      const login = await loginApproving(s.mcpUrl, dir);
      const tokenExchanges = as1.tokenRequests.filter((r) => r.get("grant_type") === "authorization_code");
      if (c.ok) {
        expect(login.run.stderr()).not.toContain("RFC 9207");
        expect(login.code).toBe(0);
        expect(tokenExchanges).toHaveLength(1);
        return;
      }
      expect(login.code).toBe(1);
      expect(login.run.stderr()).toMatch(/iss/);
      expect(login.run.stderr()).toContain("RFC 9207");
      // Refused before the code went to the token endpoint, and nothing was kept.
      expect(tokenExchanges).toHaveLength(0);
      expect(login.run.stdout()).toBe("");
      const file = JSON.parse(readFileSync(join(dir, "credentials.json"), "utf8")) as {
        servers: Record<string, { tokens?: unknown; code_verifier?: unknown }>;
      };
      expect(file.servers[s.mcpUrl]?.tokens).toBeUndefined();
      expect(file.servers[s.mcpUrl]?.code_verifier).toBeUndefined();
      // The person sees the refusal in the browser too.
      expect(login.landing?.status).toBe(400);
    });
  }
});
