/** The credentials file on a real file system: modes, atomic updates, bad files, the lock. */
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CredentialStore, serverKey } from "../../src/client/credentials.js";
import { LoginProvider } from "../../src/client/provider.js";

describe("credential store", () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "mcpgw-creds-"));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("creates the directory 0700 and the file 0600, even where they existed looser", async () => {
    const dir = join(root, "loose");
    mkdirSync(dir, { mode: 0o755 });
    writeFileSync(join(dir, "credentials.json"), JSON.stringify({ version: 1, servers: {} }), {
      mode: 0o644,
    });
    chmodSync(join(dir, "credentials.json"), 0o644);
    const store = new CredentialStore(dir);
    await store.update("https://h/svc/mcp", () => ({ client: { client_id: "c1" } }));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(store.path).mode & 0o777).toBe(0o600);
    expect(store.get("https://h/svc/mcp")).toEqual({ client: { client_id: "c1" } });
  });

  it("keys entries by normalised URL and removes them", async () => {
    const store = new CredentialStore(join(root, "a"));
    await store.update("HTTPS://H:443/svc/mcp#frag", () => ({ client: { client_id: "c" } }));
    expect(store.list()).toEqual(["https://h/svc/mcp"]);
    expect(store.get("https://h/svc/mcp")?.client?.client_id).toBe("c");
    expect(await store.remove("https://h/svc/mcp")).toBe(true);
    expect(await store.remove("https://h/svc/mcp")).toBe(false);
    expect(store.list()).toEqual([]);
    expect(() => serverKey("ftp://h/x")).toThrow("not an http(s) URL");
    expect(() => serverKey("nope")).toThrow("not a URL");
  });

  it("names the file when it is not a credentials file", async () => {
    const dir = join(root, "bad");
    mkdirSync(dir);
    const store = new CredentialStore(dir);
    writeFileSync(store.path, "{not json");
    expect(() => store.get("https://h/x")).toThrow(`${store.path} is not valid JSON`);
    writeFileSync(
      store.path,
      JSON.stringify({ version: 1, servers: { "https://h/x": { tokens: { x: 1 } } } }),
    );
    expect(() => store.get("https://h/x")).toThrow("is not a credentials file");
  });

  it("reads a version 1 file: registrations move under their issuer when the tokens name it", () => {
    const dir = join(root, "v1");
    mkdirSync(dir);
    const store = new CredentialStore(dir);
    writeFileSync(
      store.path,
      JSON.stringify({
        version: 1,
        servers: {
          "https://h/a/mcp": {
            client: { client_id: "c1" },
            tokens: { access_token: "at", token_type: "Bearer", issuer: "https://h" },
            code_verifier: "left over",
          },
          "https://old/mcp": {
            client: { client_id: "c2" },
            tokens: { access_token: "x", token_type: "Bearer" },
          },
        },
      }),
    );
    expect(store.client("https://h")).toEqual({ client_id: "c1", issuer: "https://h" });
    expect(store.get("https://h/a/mcp")).toEqual({
      issuer: "https://h",
      tokens: { access_token: "at", token_type: "Bearer", issuer: "https://h" },
    });
    // No issuer known: the registration stays with its URL until a login binds it.
    expect(store.get("https://old/mcp")?.client).toEqual({ client_id: "c2" });
  });

  it("keeps registrations per issuer, apart from the per-URL entries", async () => {
    const store = new CredentialStore(join(root, "issuers"));
    await store.updateClient("https://as1", () => ({ client_id: "one" }));
    await store.updateClient("https://as2", () => ({ client_id: "two" }));
    await store.update("https://h/svc/mcp", () => ({ issuer: "https://as2" }));
    expect(store.client("https://as1")?.client_id).toBe("one");
    expect(store.client(store.get("https://h/svc/mcp")?.issuer as string)?.client_id).toBe("two");
    expect(await store.remove("https://h/svc/mcp")).toBe(true);
    // Removing a URL's login leaves the registrations for the others.
    expect(store.client("https://as2")?.client_id).toBe("two");
    const file = JSON.parse(readFileSync(store.path, "utf8"));
    expect(file.version).toBe(2);
  });

  it("serialises holders, is re-entrant, waits for another process's lock and takes over a stale one", async () => {
    const store = new CredentialStore(join(root, "lock"));
    const order: string[] = [];
    await Promise.all([
      store.exclusive(async () => {
        order.push("a-in");
        await new Promise((r) => setTimeout(r, 50));
        // Re-entrant: an update inside the section does not deadlock.
        await store.update("https://h/x", () => ({ client: { client_id: "a" } }));
        order.push("a-out");
      }),
      store.exclusive(async () => {
        order.push("b-in");
        order.push("b-out");
      }),
    ]);
    expect(order).toEqual(["a-in", "a-out", "b-in", "b-out"]);

    // A lock file as another live process would hold it: we wait until it is gone.
    const lockPath = `${store.path}.lock`;
    writeFileSync(lockPath, "");
    let entered = false;
    const waiting = store.exclusive(async () => {
      entered = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(entered).toBe(false);
    rmSync(lockPath);
    await waiting;
    expect(entered).toBe(true);

    // One left by a process that died long ago is taken over.
    writeFileSync(lockPath, "");
    const old = new Date(Date.now() - 60_000);
    utimesSync(lockPath, old, old);
    await store.exclusive(async () => undefined);
  });

  it("the login provider files the registration under its issuer, tokens with an absolute expiry, its registration key", async () => {
    const store = new CredentialStore(join(root, "p"));
    const url = "https://h/svc/mcp";
    const provider = new LoginProvider(store, url, {
      redirectUrl: "http://127.0.0.1:1/callback",
      state: "s",
      redirect: () => undefined,
    });
    expect(provider.clientMetadata).toMatchObject({
      application_type: "native",
      token_endpoint_auth_method: "none",
    });
    const ctx = { issuer: "https://as" };
    await provider.saveClientInformation(
      { client_id: "c", registration_access_token: "secret-rat" } as never,
      ctx,
    );
    await provider.saveTokens(
      { access_token: "at", token_type: "Bearer", expires_in: 3600, refresh_token: "rt" },
      ctx,
    );
    // The registration access token stays (in the 0600 file): logout deletes the registration with it.
    expect(store.client("https://as")).toEqual({
      client_id: "c",
      issuer: "https://as",
      registration_access_token: "secret-rat",
    });
    expect(provider.clientInformation(ctx)?.client_id).toBe("c");
    expect(provider.clientInformation({ issuer: "https://other" })).toBeUndefined();
    const entry = store.get(url);
    expect(entry?.issuer).toBe("https://as");
    expect(entry?.tokens?.expires_at).toBeGreaterThan(Date.now() + 3_590_000);
    // A login always asks anew: it never hands the SDK the tokens it replaces.
    expect(provider.tokens()).toBeUndefined();
  });
});
