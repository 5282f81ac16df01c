/**
 * Membership is re-checked where access is extended: at refresh and when a browser session is
 * reused, at most every `idp.recheck`. Against the GitHub emulator (org and team membership
 * read again with the user's own GitHub token) and the test OpenID provider (the provider's
 * refresh grant, groups claim), a person who leaves the team or group is refused at the first
 * refresh or session reuse once the interval has passed since their last good check, and their
 * grant ends, with an audit event; a provider that cannot be reached is a
 * 503 `temporarily_unavailable` that changes nothing.
 */
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import {
  type EmulatorUser,
  type GitHubEmulator,
  githubSettings,
  startGitHubEmulator,
} from "../support/github-emulator.js";
import {
  authorizeUrl,
  Browser,
  formField,
  pkcePair,
  REDIRECT_URI,
  registerClient,
  tokenRequest,
} from "../support/oauth-client.js";
import { type OidcTestProvider, startOidcProvider } from "../support/oidc-provider.js";

const SERVICES = { notes: { url: "http://127.0.0.1:9/mcp", scopes: ["notes:read"] } };
const OCTOCAT: EmulatorUser = {
  id: 583231,
  login: "octocat",
  email: "octocat@github.com",
  orgs: ["acme"],
  teams: [{ org: "acme", slug: "mcp" }],
};
/** Re-checked after a second; an unreachable provider refused at once (no outage grace). */
const SHORT = { recheck: "1s", recheck_grace: "0s" };
/** Re-checked after a second; an unreachable provider's last verdict stands for an hour. */
const GRACE = { recheck: "1s", recheck_grace: "1h" };
const LONG = { recheck: "1h" };
/** SHORT's and GRACE's `recheck`, in ms. */
const RECHECK_MS = 1_000;
/** How long a test waits for a provider outage to be felt (the machine is busy). */
const DEADLINE_MS = 30_000;
/** The tests poll /token and /authorize from one address: the abuse brakes stay on, with room. */
const BRAKES = {
  rate_limits: {
    token: { per_client: { max: 100_000 }, per_address: { max: 100_000 } },
    authorize: { per_address: { max: 100_000 } },
  },
};

type Outcome = { code: string } | { status: number; html: string };

/** Drives a browser from a URL through every redirect (gateway and provider), allowing consent. */
async function drive(base: string, browser: Browser, start: string): Promise<Outcome> {
  let res = await browser.get(start);
  for (let hops = 0; hops < 12; hops++) {
    const location = res.headers.get("location");
    if (res.status === 302 && location) {
      const next = new URL(location, res.url || base);
      if (`${next.origin}${next.pathname}` === REDIRECT_URI) {
        const code = next.searchParams.get("code");
        if (code) return { code };
        return { status: 302, html: next.toString() };
      }
      res = await browser.get(next.toString());
      continue;
    }
    const html = await res.text();
    if (res.status === 200 && html.includes('action="/consent"')) {
      res = await browser.postForm(`${base}/consent`, {
        request: formField(html, "request"),
        csrf: formField(html, "csrf"),
        decision: "allow",
      });
      continue;
    }
    return { status: res.status, html };
  }
  throw new Error("too many redirects");
}

interface Session {
  browser: Browser;
  clientId: string;
  refreshToken: string;
  sid: string;
}

async function signIn(gw: RunningGateway): Promise<Session> {
  const client = await registerClient(gw.url);
  const browser = new Browser();
  const { verifier, challenge } = pkcePair();
  const outcome = await drive(
    gw.url,
    browser,
    authorizeUrl(gw.url, {
      client_id: client.client_id,
      code_challenge: challenge,
      resource: `${gw.url}/notes/mcp`,
    }),
  );
  if (!("code" in outcome)) throw new Error(`no code: ${outcome.status} ${outcome.html.slice(0, 300)}`);
  const tokens = await tokenRequest(gw.url, {
    grant_type: "authorization_code",
    client_id: client.client_id,
    code: outcome.code,
    code_verifier: verifier,
    redirect_uri: REDIRECT_URI,
  });
  expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
  return {
    browser,
    clientId: client.client_id,
    refreshToken: tokens.body.refresh_token as string,
    sid: decodeJwt(tokens.body.access_token as string).sid as string,
  };
}

/** One refresh; on success the session carries the new refresh token. */
async function refresh(gw: RunningGateway, s: Session) {
  const res = await tokenRequest(gw.url, {
    grant_type: "refresh_token",
    client_id: s.clientId,
    refresh_token: s.refreshToken,
  });
  if (res.status === 200) s.refreshToken = res.body.refresh_token as string;
  return res;
}

/** Refreshes until the answer is not a 200 (the re-check bit), or the deadline passes. */
async function refreshUntilRefused(gw: RunningGateway, s: Session) {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const res = await refresh(gw, s);
    if (res.status !== 200 || Date.now() > deadline) return res;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Waits until `idp.recheck` has passed since `lastGood`: the moment the last request that could
 * have checked the user with the provider was answered (a check is recorded before its answer,
 * so it is no later). The next request that extends access must then ask the provider again.
 */
async function pastRecheck(lastGood: number): Promise<void> {
  const wait = lastGood + RECHECK_MS + 1 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

function auditEvents(lines: string[], type: string): Array<Record<string, unknown>> {
  return lines
    .map((line) => (JSON.parse(line) as { audit?: Record<string, unknown> }).audit)
    .filter((a): a is Record<string, unknown> => a?.type === type);
}

describe("GitHub: org and team membership re-checked", { timeout: 120_000 }, () => {
  let emulator: GitHubEmulator;
  let gw: RunningGateway;
  let cached: RunningGateway;
  let lenient: RunningGateway;
  const lines: string[] = [];
  const lenientLines: string[] = [];

  const tree = (idp: Record<string, unknown>) => ({
    log_level: "info",
    services: SERVICES,
    ...BRAKES,
    idp: {
      type: "github",
      ...idp,
      github: githubSettings(emulator, { allowed_teams: ["acme/mcp"] }),
    },
  });

  beforeAll(async () => {
    emulator = await startGitHubEmulator({ user: OCTOCAT });
    gw = await startFullGateway(tree(SHORT), { logLines: lines });
    cached = await startFullGateway(tree(LONG));
    lenient = await startFullGateway(tree(GRACE), { logLines: lenientLines });
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
    await cached?.close({ wipe: true });
    await lenient?.close({ wipe: true });
    await emulator?.stop();
  });

  it("refuses a refresh within the interval once the user left the team, and ends the grant", async () => {
    emulator.setUser(OCTOCAT);
    const s = await signIn(gw);
    expect((await refresh(gw, s)).status).toBe(200);
    const lastGood = Date.now();

    emulator.setUser({ ...OCTOCAT, teams: [] });
    try {
      // Within the interval: the first refresh once it has passed is refused.
      await pastRecheck(lastGood);
      const refused = await refresh(gw, s);
      expect(refused.status).toBe(400);
      expect(refused.body.error).toBe("invalid_grant");
      expect(await gw.as.grants.getGrant(s.sid)).toBeUndefined();
      // The grant is over, not just this one answer.
      expect((await refresh(gw, s)).body.error).toBe("invalid_grant");
      expect(auditEvents(lines, "user.revoked")).toContainEqual(
        expect.objectContaining({ user: "octocat", reason: "recheck", at: "refresh" }),
      );
    } finally {
      emulator.setUser(OCTOCAT);
    }
  });

  it("sends a reused browser session back to sign in once the user left the team", async () => {
    emulator.setUser(OCTOCAT);
    const s = await signIn(gw);
    const lastGood = Date.now();
    emulator.setUser({ ...OCTOCAT, teams: [] });
    try {
      // The first reuse of the session once the interval has passed is refused.
      await pastRecheck(lastGood);
      emulator.requests.length = 0;
      const { challenge } = pkcePair();
      const url = authorizeUrl(gw.url, { client_id: s.clientId, code_challenge: challenge });
      const outcome = await drive(gw.url, s.browser, url);
      if ("code" in outcome) throw new Error("the session still gives codes");
      // Through GitHub again, which now says the team is gone: refused, no code.
      expect(emulator.requests).toContain("/login/oauth/authorize");
      expect(outcome.status).toBe(403);
      expect((await refresh(gw, s)).body.error).toBe("invalid_grant");
      expect(auditEvents(lines, "user.revoked")).toContainEqual(
        expect.objectContaining({ user: "octocat", reason: "recheck", at: "session" }),
      );
    } finally {
      emulator.setUser(OCTOCAT);
    }
  });

  it("answers 503 temporarily_unavailable while GitHub cannot answer, and keeps the grant", async () => {
    emulator.setUser(OCTOCAT);
    const s = await signIn(gw);
    emulator.apiFailure = 502;
    let unavailable: Awaited<ReturnType<typeof refresh>>;
    try {
      unavailable = await refreshUntilRefused(gw, s);
    } finally {
      emulator.apiFailure = undefined;
    }
    expect(unavailable.status).toBe(503);
    expect(unavailable.body.error).toBe("temporarily_unavailable");
    expect(Number(unavailable.headers.get("retry-after"))).toBeGreaterThan(0);
    // Nothing was spent: the same refresh token works once GitHub answers again.
    expect(await gw.as.grants.getGrant(s.sid)).toBeDefined();
    expect((await refresh(gw, s)).status).toBe(200);
  });

  it("inside the outage bound the last verdict stands while GitHub cannot answer", async () => {
    emulator.setUser(OCTOCAT);
    const s = await signIn(lenient);
    emulator.apiFailure = 502;
    try {
      // Past the interval, so the provider is asked (and fails) on each of these.
      const deadline = Date.now() + DEADLINE_MS;
      while (auditEvents(lenientLines, "idp.recheck_unavailable").length === 0 && Date.now() < deadline) {
        const res = await refresh(lenient, s);
        expect(res.status, JSON.stringify(res.body)).toBe(200);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(auditEvents(lenientLines, "idp.recheck_unavailable")).toContainEqual(
        expect.objectContaining({ user: "octocat", outcome: "last-verdict" }),
      );
    } finally {
      emulator.apiFailure = undefined;
    }
    expect((await refresh(lenient, s)).status).toBe(200);
  });

  it("asks GitHub at most once per interval: with a long one the verdict is reused", async () => {
    emulator.setUser(OCTOCAT);
    const s = await signIn(cached);
    expect((await refresh(cached, s)).status).toBe(200);
    emulator.requests.length = 0;
    emulator.setUser({ ...OCTOCAT, teams: [] });
    try {
      expect((await refresh(cached, s)).status).toBe(200);
      expect(emulator.requests.filter((p) => p.startsWith("/api/"))).toEqual([]);
    } finally {
      emulator.setUser(OCTOCAT);
    }
  });
});

describe("OIDC: groups re-checked through the provider", { timeout: 120_000 }, () => {
  let op: OidcTestProvider;
  let gw: RunningGateway;
  const lines: string[] = [];

  beforeAll(async () => {
    op = await startOidcProvider();
    op.user = { ...op.user, groups: ["mcp-users"] };
    gw = await startFullGateway(
      {
        log_level: "info",
        services: SERVICES,
        ...BRAKES,
        idp: {
          type: "oidc",
          ...SHORT,
          oidc: {
            issuer: op.issuer,
            client_id: op.clientId,
            client_secret: op.clientSecret,
            allowed_teams: ["mcp-users"],
          },
        },
      },
      { logLines: lines },
    );
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
    await op?.stop();
  });

  it("refuses a refresh within the interval once the user left the group, and ends the grant", async () => {
    const s = await signIn(gw);
    expect((await refresh(gw, s)).status).toBe(200);
    const lastGood = Date.now();

    const account = op.accounts.get(op.user.sub);
    if (!account) throw new Error("the provider does not know the account");
    account.groups = ["someone-else"];
    await pastRecheck(lastGood);
    const refused = await refresh(gw, s);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe("invalid_grant");
    expect(await gw.as.grants.getGrant(s.sid)).toBeUndefined();
    expect(op.requests.filter((p) => p === "/token").length).toBeGreaterThan(1);
    expect(auditEvents(lines, "user.revoked")).toContainEqual(
      expect.objectContaining({ user: "ada", reason: "recheck", at: "refresh" }),
    );
  });

  it("refuses a refresh once the provider no longer knows the account", async () => {
    op.user = { ...op.user, groups: ["mcp-users"] };
    const s = await signIn(gw);
    expect((await refresh(gw, s)).status).toBe(200);
    const lastGood = Date.now();
    op.accounts.delete(op.user.sub);
    await pastRecheck(lastGood);
    const refused = await refresh(gw, s);
    expect(refused.body.error).toBe("invalid_grant");
    expect(await gw.as.grants.getGrant(s.sid)).toBeUndefined();
  });
});
