/**
 * The GitHub provider against the GitHub emulator, over real HTTP: authorization URL, the
 * browser's trip to /login/oauth/authorize, the code exchange, the REST calls, the allowlist.
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, validateConfig } from "../../src/config/load.js";
import { createIdentityProvider } from "../../src/idp/create.js";
import { GitHubIdentityProvider } from "../../src/idp/github.js";
import { IdpError, type UserIdentity } from "../../src/idp/idp.js";
import { type GitHubEmulator, startGitHubEmulator } from "../support/github-emulator.js";

const REDIRECT = "http://127.0.0.1:18080/callback";
const OCTOCAT = { id: 583231, login: "octocat", name: "The Octocat", email: "octocat@github.com" };

let gh: GitHubEmulator;

beforeAll(async () => {
  gh = await startGitHubEmulator();
});
afterAll(async () => {
  await gh.stop();
});
afterEach(() => {
  gh.setUser(OCTOCAT);
  gh.autoApprove = true;
  gh.apiFailure = undefined;
});

function githubConfig(policy: Record<string, unknown> = { allowed_users: ["octocat"] }, e = gh) {
  return validateConfig({
    idp: {
      type: "github",
      github: {
        client_id: e.clientId,
        client_secret: e.clientSecret,
        web_url: e.webUrl,
        api_url: e.apiUrl,
        ...policy,
      },
    },
  });
}

function provider(policy?: Record<string, unknown>, opts?: { timeoutMs?: number }) {
  return new GitHubIdentityProvider(githubConfig(policy).idp.github, opts);
}

function pkce() {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

/** What the browser does: follow the authorization URL and come back with a code. */
async function authorize(
  p: GitHubIdentityProvider,
  challenge: string,
  state = randomBytes(8).toString("hex"),
) {
  const res = await fetch(
    await p.authorizationUrl({ state, redirectUri: REDIRECT, codeChallenge: challenge }),
    {
      redirect: "manual",
    },
  );
  expect(res.status).toBe(302);
  const back = new URL(res.headers.get("location") ?? "");
  expect(`${back.origin}${back.pathname}`).toBe(REDIRECT);
  expect(back.searchParams.get("state")).toBe(state);
  const code = back.searchParams.get("code");
  expect(code).toBeTruthy();
  return code as string;
}

async function login(p: GitHubIdentityProvider): Promise<UserIdentity> {
  const { verifier, challenge } = pkce();
  const code = await authorize(p, challenge);
  return p.complete({ code, redirectUri: REDIRECT, codeVerifier: verifier });
}

/** Runs `fn`, expects an IdpError, and checks that no secret leaked into its message. */
async function idpFailure(fn: () => Promise<unknown>): Promise<string> {
  const err = await fn().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(IdpError);
  const message = (err as IdpError).message;
  expect(message).not.toMatch(/gho_/);
  expect(message).not.toContain(gh.clientSecret);
  return message;
}

describe("GitHub login flow", () => {
  it("builds an authorization URL with state, PKCE S256 and the minimal scopes", async () => {
    const url = new URL(
      await provider().authorizationUrl({ state: "s1", redirectUri: REDIRECT, codeChallenge: "c1" }),
    );
    expect(`${url.origin}${url.pathname}`).toBe(`${gh.webUrl}/login/oauth/authorize`);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      client_id: gh.clientId,
      redirect_uri: REDIRECT,
      state: "s1",
      code_challenge: "c1",
      code_challenge_method: "S256",
      scope: "read:user user:email",
    });
    const withOrgs = new URL(
      await provider({ allowed_orgs: ["acme"] }).authorizationUrl({
        state: "s",
        redirectUri: REDIRECT,
        codeChallenge: "c",
      }),
    );
    expect(withOrgs.searchParams.get("scope")).toBe("read:user user:email read:org");
  });

  it("turns a code into the person's identity, without reading orgs it does not need", async () => {
    gh.requests.length = 0;
    const user = await login(provider());
    expect(user).toEqual({
      sub: "583231",
      login: "octocat",
      name: "The Octocat",
      email: "octocat@github.com",
      provider: "github",
    });
    expect(gh.requests).toEqual(["/login/oauth/authorize", "/login/oauth/access_token", "/api/v3/user"]);
  });

  it("takes the primary verified address when the profile email is private", async () => {
    gh.setUser({
      id: 7,
      login: "quiet",
      emails: [
        { email: "old@example.com", primary: false, verified: true },
        { email: "quiet@example.com", primary: true, verified: true },
      ],
    });
    const user = await login(provider({ allowed_users: ["quiet"] }));
    expect(user.email).toBe("quiet@example.com");
    expect(user.name).toBeUndefined();
  });

  it("leaves the email out when the primary address is not verified", async () => {
    gh.setUser({
      id: 8,
      login: "unverified",
      emails: [{ email: "u@example.com", primary: true, verified: false }],
    });
    const user = await login(provider({ allowed_users: ["unverified"] }));
    expect(user.email).toBeUndefined();
  });

  it("reads organisations and teams when the allowlist names them", async () => {
    gh.setUser({
      ...OCTOCAT,
      orgs: ["Acme"],
      teams: [
        { org: "Acme", slug: "platform" },
        { org: "Other", slug: "ops" },
      ],
    });
    const p = provider({ allowed_teams: ["acme/platform"] });
    const user = await login(p);
    expect(user.groups?.sort()).toEqual(["Acme", "Acme/platform", "Other", "Other/ops"]);
    expect(p.checkAccess(user)).toEqual({ allowed: true });
  });

  it("works through GitHub's own authorize page when auto-approve is off", async () => {
    gh.autoApprove = false;
    const p = provider();
    const { verifier, challenge } = pkce();
    const page = await fetch(
      await p.authorizationUrl({ state: "st", redirectUri: REDIRECT, codeChallenge: challenge }),
    );
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(html).toContain("Authorize");
    expect(html).toContain("octocat");
    const form = new URLSearchParams(
      [...html.matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m): [string, string] => [
        m[1] ?? "",
        (m[2] ?? "").replace(/&#38;/g, "&"),
      ]),
    );
    form.set("authorize", "1");
    const approved = await fetch(`${gh.webUrl}/login/oauth/authorize`, {
      method: "POST",
      body: form,
      redirect: "manual",
    });
    const back = new URL(approved.headers.get("location") ?? "");
    expect(back.searchParams.get("state")).toBe("st");
    const user = await p.complete({
      code: back.searchParams.get("code") ?? "",
      redirectUri: REDIRECT,
      codeVerifier: verifier,
    });
    expect(user.login).toBe("octocat");

    form.set("authorize", "0");
    const denied = await fetch(`${gh.webUrl}/login/oauth/authorize`, {
      method: "POST",
      body: form,
      redirect: "manual",
    });
    const deniedBack = new URL(denied.headers.get("location") ?? "");
    expect(deniedBack.searchParams.get("error")).toBe("access_denied");
    expect(deniedBack.searchParams.get("code")).toBeNull();
  });
});

describe("GitHub allowlist", () => {
  const octocat: UserIdentity = {
    sub: "1",
    login: "octocat",
    provider: "github",
    groups: ["acme", "acme/platform"],
  };

  it.each([
    ["a listed user", { allowed_users: ["octocat"] }, true],
    ["a listed user, any case and spacing", { allowed_users: "alice, OctoCat " }, true],
    ["everyone with *", { allowed_users: ["*"] }, true],
    ["an organisation member", { allowed_orgs: ["ACME"] }, true],
    ["a team member", { allowed_teams: ["Acme/Platform"] }, true],
    ["someone not on the list", { allowed_users: ["alice"] }, false],
    ["a member of another org", { allowed_orgs: ["evil-corp"] }, false],
    ["a member of another team in the same org", { allowed_teams: ["acme/security"] }, false],
  ])("admits %s: %s", (_name, policy, allowed) => {
    expect(provider(policy).checkAccess(octocat).allowed).toBe(allowed);
  });

  it("admits nobody when no allowlist is set, and says what to set", () => {
    expect(provider({}).checkAccess(octocat)).toEqual({
      allowed: false,
      reason: "no GitHub users are allowed: set allowed_users",
    });
  });

  it("refuses a real login by someone not on the list", async () => {
    gh.setUser({ id: 99, login: "mallory" });
    const p = provider({ allowed_users: ["octocat"], allowed_orgs: ["acme"] });
    const user = await login(p);
    expect(user.groups).toEqual([]);
    const decision = p.checkAccess(user);
    expect(decision.allowed).toBe(false);
    expect(decision.allowed === false && decision.reason).toContain("mallory");
  });
});

describe("GitHub failures become IdpError", () => {
  it("wrong client secret", async () => {
    const cfg = githubConfig().idp.github;
    const p = new GitHubIdentityProvider({ ...cfg, client_secret: "not-the-secret" });
    const { verifier, challenge } = pkce();
    const code = await authorize(p, challenge);
    const message = await idpFailure(() =>
      p.complete({ code, redirectUri: REDIRECT, codeVerifier: verifier }),
    );
    expect(message).toBe(
      "GitHub rejected the login: The client_id and/or client_secret passed are incorrect.",
    );
  });

  it("replayed code", async () => {
    const p = provider();
    const { verifier, challenge } = pkce();
    const code = await authorize(p, challenge);
    await p.complete({ code, redirectUri: REDIRECT, codeVerifier: verifier });
    const message = await idpFailure(() =>
      p.complete({ code, redirectUri: REDIRECT, codeVerifier: verifier }),
    );
    expect(message).toBe("GitHub rejected the login: The code passed is incorrect or expired.");
  });

  it("wrong PKCE verifier, and the code is spent afterwards", async () => {
    const p = provider();
    const { verifier, challenge } = pkce();
    const code = await authorize(p, challenge);
    await idpFailure(() => p.complete({ code, redirectUri: REDIRECT, codeVerifier: pkce().verifier }));
    await idpFailure(() => p.complete({ code, redirectUri: REDIRECT, codeVerifier: verifier }));
  });

  it("API answering 500", async () => {
    const p = provider();
    const { verifier, challenge } = pkce();
    const code = await authorize(p, challenge);
    gh.apiFailure = 500;
    const message = await idpFailure(() =>
      p.complete({ code, redirectUri: REDIRECT, codeVerifier: verifier }),
    );
    expect(message).toContain("HTTP 500");
  });

  it("GitHub not answering at all, and GitHub too slow", async () => {
    const down = await startGitHubEmulator({ clientId: gh.clientId, clientSecret: gh.clientSecret });
    const p = new GitHubIdentityProvider(githubConfig(undefined, down).idp.github);
    await down.stop();
    const message = await idpFailure(() =>
      p.complete({ code: "x", redirectUri: REDIRECT, codeVerifier: "v" }),
    );
    expect(message).toMatch(/^Could not reach GitHub at http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);

    const silent: Server = createServer(() => {}); // accepts, never answers
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const slow = new GitHubIdentityProvider(
      { ...githubConfig().idp.github, web_url: url, api_url: url },
      { timeoutMs: 200 },
    );
    const slowMessage = await idpFailure(() =>
      slow.complete({ code: "x", redirectUri: REDIRECT, codeVerifier: "v" }),
    );
    expect(slowMessage).toContain("no answer within 0.2 s");
    silent.closeAllConnections();
    silent.close();
  });

  it("missing client id or secret is a config error naming the key", async () => {
    const cfg = validateConfig({ idp: { type: "github", github: { client_secret: "s" } } });
    await expect(createIdentityProvider(cfg, undefined as never)).rejects.toThrow(ConfigError);
    await expect(createIdentityProvider(cfg, undefined as never)).rejects.toThrow(/idp\.github\.client_id/);
    const noSecret = validateConfig({ idp: { type: "github", github: { client_id: "c" } } });
    await expect(createIdentityProvider(noSecret, undefined as never)).rejects.toThrow(
      /idp\.github\.client_secret/,
    );
  });
});

describe("the emulator itself", () => {
  it("answers the token request form-encoded unless JSON is asked for, like GitHub", async () => {
    const { verifier, challenge } = pkce();
    const code = await authorize(provider(), challenge);
    const res = await fetch(`${gh.webUrl}/login/oauth/access_token`, {
      method: "POST",
      body: new URLSearchParams({
        client_id: gh.clientId,
        client_secret: gh.clientSecret,
        code,
        code_verifier: verifier,
      }),
    });
    const body = new URLSearchParams(await res.text());
    expect(body.get("access_token")).toMatch(/^gho_/);
    expect(body.get("token_type")).toBe("bearer");
    expect(body.get("scope")).toBe("read:user,user:email");
  });

  it("refuses the API without a valid token", async () => {
    for (const authorization of [undefined, "Bearer gho_nope", "token gho_nope"]) {
      const res = await fetch(`${gh.apiUrl}/user`, { headers: authorization ? { authorization } : {} });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ message: "Bad credentials" });
    }
  });

  it("sends a mismatched redirect_uri's error to the registered callback", async () => {
    const p = provider();
    const url = await p.authorizationUrl({
      state: "s",
      redirectUri: "https://evil.example/cb",
      codeChallenge: "c",
    });
    const res = await fetch(url, { redirect: "manual" });
    const back = new URL(res.headers.get("location") ?? "");
    expect(back.hostname).toBe("127.0.0.1");
    expect(back.searchParams.get("error")).toBe("redirect_uri_mismatch");
    expect(back.searchParams.get("code")).toBeNull();
  });
});
