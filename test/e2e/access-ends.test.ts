/**
 * Access ends at once when an admin removes or disables a user: `mcp-gateway serve` as a
 * process, `mcp-gateway admin users remove|disable|enable` as processes on the same data, and a
 * browser that was signed in. Afterwards the browser's session is gone (the login form, not a
 * code), the user's refresh tokens are refused, and what they had consented to is forgotten.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../../src/config/load.js";
import { openStore } from "../../src/store/open.js";
import { LOGIN, SERVICES } from "../oauth/helpers.js";
import {
  authorizeUrl,
  Browser,
  formField,
  pkcePair,
  REDIRECT_URI,
  type RegisteredClient,
  registerClient,
  tokenRequest,
} from "../support/oauth-client.js";
import { freePort } from "../support/upstream.js";
import { BUILT, cli, type ServeProcess, startServe } from "./serve-process.js";

const BOB = { username: "bob", password: "another fine password" };

/** Where one GET /authorize with this browser ends: a code for the client, or the page it stops on. */
type Stop = { code: string } | { page: "login" | "consent"; html: string };

async function authorizeStop(base: string, browser: Browser, client: RegisteredClient, challenge: string) {
  const res = await browser.get(
    authorizeUrl(base, { client_id: client.client_id, code_challenge: challenge, state: "s" }),
  );
  return follow(base, browser, res);
}

async function follow(base: string, browser: Browser, first: Response): Promise<Stop> {
  let res = first;
  for (let hops = 0; hops < 4; hops++) {
    const location = res.headers.get("location");
    if (res.status === 302 && location) {
      const next = new URL(location, base);
      if (`${next.origin}${next.pathname}` === REDIRECT_URI) {
        const code = next.searchParams.get("code");
        if (!code) throw new Error(`sent back without a code: ${next}`);
        return { code };
      }
      res = await browser.get(next.toString());
      continue;
    }
    const html = await res.text();
    if (res.status === 200 && html.includes('action="/login"')) return { page: "login", html };
    if (res.status === 200 && html.includes('action="/consent"')) return { page: "consent", html };
    throw new Error(`unexpected ${res.status}: ${html.slice(0, 300)}`);
  }
  throw new Error("too many redirects");
}

/** Signs in on the login form, allows on the consent page when it comes, and returns the code. */
async function signIn(
  base: string,
  browser: Browser,
  stop: Stop,
  login: { username: string; password: string },
): Promise<string> {
  let at = stop;
  for (let steps = 0; steps < 3; steps++) {
    if ("code" in at) return at.code;
    const form = { request: formField(at.html, "request"), csrf: formField(at.html, "csrf") };
    const res =
      at.page === "login"
        ? await browser.postForm(`${base}/login`, { ...form, ...login })
        : await browser.postForm(`${base}/consent`, { ...form, decision: "allow" });
    at = await follow(base, browser, res);
  }
  throw new Error("no code after signing in");
}

async function redeem(base: string, client: RegisteredClient, code: string, verifier: string) {
  const tokens = await tokenRequest(base, {
    grant_type: "authorization_code",
    client_id: client.client_id,
    code,
    code_verifier: verifier,
    redirect_uri: REDIRECT_URI,
  });
  expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
  return tokens.body.refresh_token as string;
}

/** A new client at `base` and its grant for `login`, signed in with `browser`: the client and its refresh token. */
async function grantFor(base: string, browser: Browser, login: { username: string; password: string }) {
  const client = await registerClient(base);
  const refreshToken = await grantOf(base, browser, client, login);
  return { client, refreshToken };
}

/** `client`'s grant for `login`, signed in with `browser`: its refresh token. */
async function grantOf(
  base: string,
  browser: Browser,
  client: RegisteredClient,
  login: { username: string; password: string },
) {
  const { challenge, verifier } = pkcePair();
  const code = await signIn(base, browser, await authorizeStop(base, browser, client, challenge), login);
  return redeem(base, client, code, verifier);
}

/** Posts the login form in `html` as `login` and follows on: where that stops. */
async function submitLogin(
  base: string,
  browser: Browser,
  html: string,
  login: { username: string; password: string },
): Promise<Stop> {
  const res = await browser.postForm(`${base}/login`, {
    request: formField(html, "request"),
    csrf: formField(html, "csrf"),
    ...login,
  });
  return follow(base, browser, res);
}

const refresh = (base: string, client: RegisteredClient, token: string) =>
  tokenRequest(base, { grant_type: "refresh_token", client_id: client.client_id, refresh_token: token });

// Processes that hash passwords (scrypt) on a busy machine: generous per-test time.
describe.skipIf(!BUILT && process.env.CI !== "true")(
  "admin users remove|disable|enable against a running gateway (run `npm run build` first)",
  { timeout: 180_000 },
  () => {
    let dir: string;
    let config: string;
    let serve: ServeProcess;
    const admin = (...args: string[]) => cli(["admin", "users", ...args, "--config", config], { cwd: dir });
    const addUser = (user: { username: string; password: string }) =>
      cli(["admin", "users", "add", user.username, "--password-stdin", "--config", config], {
        cwd: dir,
        input: `${user.password}\n`,
      });

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), "mcpgw-access-ends-"));
      config = join(dir, "gateway.yaml");
      // JSON is YAML.
      writeFileSync(config, JSON.stringify({ ...SERVICES, data_dir: dir, log_level: "warn" }));
      for (const user of [LOGIN, BOB]) {
        const added = addUser(user);
        expect(added.status, added.stderr).toBe(0);
      }
      serve = await startServe({ cwd: dir, args: ["--config", config, "--no-builtins"] });
    });
    afterAll(async () => {
      await serve?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it("after `admin users remove` the signed-in browser gets the login form, not a code", async () => {
      const browser = new Browser();
      const { client, refreshToken } = await grantFor(serve.base, browser, LOGIN);
      // The session and the remembered consent at work: straight back with a code.
      const again = await authorizeStop(serve.base, browser, client, pkcePair().challenge);
      expect("code" in again).toBe(true);

      const removed = admin("remove", LOGIN.username);
      expect(removed.status, removed.stderr).toBe(0);

      const after = await authorizeStop(serve.base, browser, client, pkcePair().challenge);
      expect("code" in after ? "a code" : after.page).toBe("login");
      const refused = await refresh(serve.base, client, refreshToken);
      expect(refused.status).toBe(400);
      expect(refused.body.error).toBe("invalid_grant");

      // A new account under the same name starts from nothing: its consent is asked for again.
      const readded = addUser(LOGIN);
      expect(readded.status, readded.stderr).toBe(0);
      const form = await authorizeStop(serve.base, browser, client, pkcePair().challenge);
      if ("code" in form) throw new Error("a code without signing in");
      const next = await submitLogin(serve.base, browser, form.html, LOGIN);
      expect("code" in next ? "a code" : next.page).toBe("consent");
    });

    it("`admin users disable` ends the session and the grants; `enable` lets the user sign in again", async () => {
      const browser = new Browser();
      const { client, refreshToken } = await grantFor(serve.base, browser, BOB);

      const disabled = admin("disable", BOB.username);
      expect(disabled.status, disabled.stderr).toBe(0);

      const after = await authorizeStop(serve.base, browser, client, pkcePair().challenge);
      if ("code" in after) throw new Error("a disabled user's browser got a code");
      expect(after.page).toBe("login");
      // The right password of a disabled account does not sign in.
      const denied = await browser.postForm(`${serve.base}/login`, {
        request: formField(after.html, "request"),
        csrf: formField(after.html, "csrf"),
        ...BOB,
      });
      expect(denied.status).toBe(403);
      expect(await denied.text()).toContain("disabled");
      const refused = await refresh(serve.base, client, refreshToken);
      expect(refused.body.error).toBe("invalid_grant");

      const enabled = admin("enable", BOB.username);
      expect(enabled.status, enabled.stderr).toBe(0);
      const back = pkcePair();
      const start = await authorizeStop(serve.base, browser, client, back.challenge);
      if ("code" in start) throw new Error("a code without signing in again");
      expect(start.page).toBe("login");
      // Consent was ended with the rest: asked again.
      const consent = await submitLogin(serve.base, browser, start.html, BOB);
      expect("code" in consent ? "a code" : consent.page).toBe("consent");
      const newCode = await signIn(serve.base, browser, consent, BOB);
      const newRefresh = await redeem(serve.base, client, newCode, back.verifier);
      expect((await refresh(serve.base, client, newRefresh)).status).toBe(200);
    });

    it("disable and enable name the user that is missing", () => {
      expect(admin("disable", "nobody").stderr).toContain("nobody");
      expect(admin("disable", "nobody").status).toBe(1);
      expect(admin("enable", "nobody").status).toBe(1);
    });
  },
);

describe.skipIf(!BUILT && process.env.CI !== "true")(
  "what an older version stored (no owner indexes) is ended too (run `npm run build` first)",
  { timeout: 180_000 },
  () => {
    let dir: string;
    let config: string;
    let tree: Record<string, unknown>;
    const CAROL = { username: "carol", password: "carol's long password" };

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), "mcpgw-access-ends-legacy-"));
      config = join(dir, "gateway.yaml");
      tree = { ...SERVICES, data_dir: dir, log_level: "warn" };
      writeFileSync(config, JSON.stringify(tree));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("after an upgrade, `admin users remove` still ends the grants and sessions written before it", async () => {
      const added = cli(["admin", "users", "add", CAROL.username, "--password-stdin", "--config", config], {
        cwd: dir,
        input: `${CAROL.password}\n`,
      });
      expect(added.status, added.stderr).toBe(0);
      const port = await freePort();
      const browser = new Browser();
      let serve = await startServe({ cwd: dir, port, args: ["--config", config, "--no-builtins"] });
      let client: RegisteredClient;
      let refreshToken: string;
      try {
        client = await registerClient(serve.base);
        refreshToken = await grantOf(serve.base, browser, client, CAROL);
      } finally {
        await serve.stop();
      }

      // Make the store look as an older version left it: no index entries, no migration mark,
      // consents that do not name their owners.
      const store = await openStore(validateConfig({ ...tree, port }));
      try {
        for (const owner of ["user:carol", `client:${client.client_id}`]) {
          await store.indexRemove(owner, await store.indexMembers(owner));
        }
        await store.delete("migrations", "owner_index_v1");
        for (const { key, value } of await store.list("consents")) {
          const { sub: _sub, client_id: _client, ...old } = value as Record<string, unknown>;
          await store.put("consents", key, old as never, 3600);
        }
        expect(await store.indexMembers("user:carol")).toEqual([]);
      } finally {
        await store.close();
      }

      serve = await startServe({ cwd: dir, port, args: ["--config", config, "--no-builtins"] });
      try {
        const removed = cli(["admin", "users", "remove", CAROL.username, "--config", config], { cwd: dir });
        expect(removed.status, removed.stderr).toBe(0);
        const after = await authorizeStop(serve.base, browser, client, pkcePair().challenge);
        expect("code" in after ? "a code" : after.page).toBe("login");
        expect((await refresh(serve.base, client, refreshToken)).body.error).toBe("invalid_grant");
        // The consent from before named no owner: forgotten, so a new carol is asked again.
        const readded = cli(
          ["admin", "users", "add", CAROL.username, "--password-stdin", "--config", config],
          {
            cwd: dir,
            input: `${CAROL.password}\n`,
          },
        );
        expect(readded.status, readded.stderr).toBe(0);
        const next = await submitLogin(serve.base, browser, "code" in after ? "" : after.html, CAROL);
        expect("code" in next ? "a code" : next.page).toBe("consent");
      } finally {
        await serve.stop();
      }
    });
  },
);
