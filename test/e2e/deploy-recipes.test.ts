/**
 * README.md's "Deploy" part, snippet by snippet, as a person follows it:
 *
 * - the VPS recipe with HTTPS through Caddy, on loopback: the config, env file, `config check`,
 *   the service started as deploy/systemd's unit starts it, the Caddyfile with the README's own
 *   rehearsal change (`tls internal`), `curl` against it and `mcp-gateway login` (the browser
 *   steps driven over https through Caddy, GitHub played by the emulator reached through
 *   idp.github.web_url/api_url), then `mcp-gateway connect` under a real MCP client (SDK v1)
 *   calling a tool, all over https through Caddy with Caddy's local CA trusted;
 * - backup, then restore into a fresh data directory: the login made before still works;
 * - localhost: `serve` and `login` as written;
 * - what cannot run here is checked instead, and said so: ufw (not installed, and it would
 *   change this machine's firewall), Traefik (not in Debian; its labels are parsed and held
 *   against a real gateway's /verify), systemctl (no systemd as PID 1: test/e2e/systemd.test.ts
 *   runs the unit's service the same way). The nginx snippet is the `location` of
 *   deploy/nginx/gateway.conf, which test/e2e/behind-proxy.test.ts runs against real nginx.
 *
 * Substitutions, all of them test plumbing: `auth.example.com` is `localhost:PORT` (a name that
 * resolves here, for the CLI's child processes too), port 8080 is a free port, `/etc` and
 * `/var` are under a temp root.
 */
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { decodeJwt } from "jose";
import { Agent, fetch as undiciFetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { validateConfig } from "../../src/config/load.js";
import { authorizationUrlIn, cliEnv } from "../client/cli-process.js";
import { checkBinary } from "../support/binaries.js";
import { parseEnvFile, parseUnitFile, unitValue, unitValues } from "../support/deploy-files.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { type EmulatorUser, type GitHubEmulator, startGitHubEmulator } from "../support/github-emulator.js";
import { accessTokenFor } from "../support/login.js";
import {
  authorizeUrl,
  Browser,
  formField,
  pkcePair,
  REDIRECT_URI,
  registerClient,
  tokenRequest,
} from "../support/oauth-client.js";
import { CADDY, deployFile } from "../support/proxies.js";
import {
  commandLines,
  deploySnippets,
  fencedBlocks,
  readmePart,
  type Snippet,
  snippet,
} from "../support/readme-snippets.js";
import { startRedis, type TestRedis } from "../support/redis.js";
import { type Spawned, startProcess } from "../support/spawned.js";
import { freePort } from "../support/upstream.js";
import { BIN, BUILT, cleanEnv, cli, type ServeProcess, startServe } from "./serve-process.js";

const SNIPPETS = deploySnippets();
const get = (name: string): Snippet => snippet(SNIPPETS, name);
const caddy = checkBinary(CADDY);
const canRun = (BUILT && caddy.available) || process.env.CI === "true";

/** The README's subsections that came before snippets were marked; their files have tests of their own. */
const PACKAGING_SECTIONS = new Set([
  "Docker Compose: gateway, Redis and Caddy with HTTPS",
  "The container image alone",
  "npm and systemd",
]);

/** Every snippet a test below handles. */
const HANDLED = [
  "local/serve",
  "vps/firewall",
  "vps/gateway.yaml",
  "vps/env",
  "vps/start",
  "vps/Caddyfile",
  "vps/check",
  "traefik/compose.yaml",
  "nginx/location",
  "github/teams.yaml",
  "redis/gateway.yaml",
  "cluster/gateway.yaml",
  "upgrade/backup",
  "upgrade/restore",
];

describe("README Deploy: the snippets", () => {
  it("every fenced block of the Deploy part (but the packaging sections) is a named snippet a test handles", () => {
    for (const block of fencedBlocks(readmePart("Deploy"))) {
      if (PACKAGING_SECTIONS.has(block.section)) continue;
      expect({ section: block.section, body: block.body, named: block.name !== undefined }).toMatchObject({
        named: true,
      });
    }
    expect([...SNIPPETS.keys()].sort()).toEqual([...HANDLED].sort());
  });

  it("the OAuth app's callback URL in step 5 is {public_url}/callback of the config in step 6", () => {
    const config = parse(get("vps/gateway.yaml").body) as { public_url: string };
    const part = readmePart("Deploy");
    expect(part).toContain(`*Authorization callback URL*: \`${config.public_url}/callback\``);
    expect(part).toContain("`{public_url}/callback`");
  });

  it("vps/firewall (ufw is not run here): SSH, 80 and 443 in, and not the gateway's port", () => {
    const lines = commandLines(get("vps/firewall").body);
    expect(lines.every((l) => l.startsWith("ufw "))).toBe(true);
    const allowed = lines.filter((l) => l.startsWith("ufw allow ")).map((l) => l.slice("ufw allow ".length));
    expect(allowed.sort()).toEqual(["443/tcp", "80/tcp", "OpenSSH"]);
    expect(lines.at(-1)).toBe("ufw enable");
  });

  it("nginx/location is the location block of deploy/nginx/gateway.conf, which behind-proxy.test.ts runs", () => {
    const shipped = deployFile("nginx/gateway.conf").replaceAll("{{GATEWAY}}", "http://127.0.0.1:8080");
    expect(shipped).toContain(get("nginx/location").body);
    expect(readFileSync(resolve("test/e2e/behind-proxy.test.ts"), "utf8")).toContain("nginx/gateway.conf");
  });

  it("github/teams.yaml and redis/gateway.yaml are configs the gateway accepts", () => {
    const teams = validateConfig(
      withSecrets(parse(get("github/teams.yaml").body) as Record<string, unknown>),
    ) as unknown as {
      idp: { github: { allowed_orgs: string[]; allowed_users: string[] } };
      services: Record<string, { allowed_teams?: string[] }>;
    };
    expect(teams.idp.github.allowed_orgs).toEqual(["acme"]);
    expect(teams.services.notes?.allowed_teams).toEqual(["acme/platform"]);
    const redis = validateConfig(parse(get("redis/gateway.yaml").body)) as unknown as {
      store: { type: string; redis: { key_prefix: string } };
      keys: { encryption_secret?: string };
    };
    expect(redis.store.type).toBe("redis");
    expect(redis.keys.encryption_secret?.length).toBeGreaterThanOrEqual(32);
  });

  it("cluster/gateway.yaml is a config the gateway accepts (test/cluster/ runs instances configured so)", () => {
    const cluster = validateConfig(parse(get("cluster/gateway.yaml").body)) as unknown as {
      store: { type: string };
      cluster: { secret_file?: string; advertise_url?: string };
    };
    expect(cluster.store.type).toBe("redis");
    expect(cluster.cluster.secret_file).toBeTruthy();
    expect(cluster.cluster.advertise_url).toBe("http://10.0.0.5:8081");
  });
});

/** The GitHub app's two values, which the README keeps in the env file, for a config checked alone. */
function withSecrets(tree: Record<string, unknown>): Record<string, unknown> {
  const idp = tree.idp as { github: Record<string, unknown> };
  idp.github.client_id = "id";
  idp.github.client_secret = "secret";
  return tree;
}

/** A browser over https that trusts `ca` (Caddy's local root), and plain http as any browser does. */
function trustingFetch(ca: string): typeof fetch {
  const agent = new Agent({ connect: { ca } });
  return ((input: string | URL | Request, init?: RequestInit) =>
    undiciFetch(input as string, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch;
}

/**
 * Drives the person's browser from an authorization URL: the gateway, GitHub (the emulator
 * approves), the gateway's /callback, consent or local login, and back to the client's
 * redirect URI, which it visits when `visit` (the CLI's loopback receiver); returns that URL.
 */
async function browserLogin(
  browser: Browser,
  authorizationUrl: URL,
  login?: { username: string; password: string },
  visit = true,
): Promise<URL> {
  const back = authorizationUrl.searchParams.get("redirect_uri") as string;
  let res = await browser.get(authorizationUrl.href);
  for (let hops = 0; hops < 12; hops++) {
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location) {
      const next = new URL(location, res.url || authorizationUrl);
      await res.body?.cancel();
      if (`${next.origin}${next.pathname}` === back) {
        if (visit) expect((await browser.get(next.href)).status).toBe(200);
        return next;
      }
      res = await browser.get(next.href);
      continue;
    }
    const html = await res.text();
    const origin = new URL(res.url || authorizationUrl).origin;
    if (res.status === 200 && html.includes('action="/consent"')) {
      res = await browser.postForm(`${authorizationUrl.origin}/consent`, {
        request: formField(html, "request"),
        csrf: formField(html, "csrf"),
        decision: "allow",
      });
    } else if (res.status === 200 && html.includes('action="/login"') && login) {
      res = await browser.postForm(`${origin}/login`, {
        request: formField(html, "request"),
        csrf: formField(html, "csrf"),
        ...login,
      });
    } else {
      throw new Error(`stopped on a page: ${res.status} ${html.slice(0, 400)}`);
    }
  }
  throw new Error("too many redirects");
}

/** A README shell line run by bash, with output collected; `exited` resolves with its code. */
function runLine(line: string, env: NodeJS.ProcessEnv, cwd: string) {
  const child = spawn("bash", ["-c", line], { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once("close", (code) => r(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** `mcp-gateway` on a PATH of its own, as `npm install -g` puts it. */
function binDir(root: string): string {
  const dir = join(root, "usr", "bin");
  mkdirSync(dir, { recursive: true });
  symlinkSync(BIN, join(dir, "mcp-gateway"));
  return dir;
}

describe.skipIf(!canRun)("README Deploy: the VPS recipe with HTTPS through Caddy, on loopback", () => {
  let root: string;
  let emulator: GitHubEmulator;
  let gateway: ServeProcess | undefined;
  let caddyProc: Spawned | undefined;
  let gatewayPort: number;
  let publicUrl: string;
  let caRoot: string;
  let path: string;
  let clientDir: string;
  /** `auth.example.com` as this machine reaches the rehearsal, the ports and paths mapped. */
  let local: (text: string) => string;
  /** The environment systemd gives the service (the unit's Environment= and EnvironmentFile=). */
  let serviceEnv: Record<string, string>;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "mcpgw-recipe-"));
    const caddyPort = await freePort();
    gatewayPort = await freePort();
    publicUrl = `https://localhost:${caddyPort}`;
    local = (text) =>
      text
        .replaceAll("https://auth.example.com", publicUrl)
        .replaceAll("auth.example.com", `localhost:${caddyPort}`)
        .replaceAll("127.0.0.1:8080", `127.0.0.1:${gatewayPort}`)
        .replaceAll("/etc/", `${root}/etc/`)
        .replaceAll("/var/", `${root}/var/`);
    path = `${binDir(root)}:${process.env.PATH}`;
    clientDir = join(root, "laptop", "credentials");

    // Step 7's values are the OAuth app's: the emulator is that app.
    const env = parseEnvFile(get("vps/env").body);
    emulator = await startGitHubEmulator({
      clientId: env.GITHUB_CLIENT_ID,
      clientSecret: env.GITHUB_CLIENT_SECRET,
      callbackUrl: `${publicUrl}/callback`,
      user: { id: 1001, login: "alice", name: "Alice", email: "alice@example.com" },
    });

    // Steps 6 and 7: the files, where the unit reads them.
    mkdirSync(join(root, "etc", "mcp-gateway"), { recursive: true });
    mkdirSync(join(root, "etc", "caddy"), { recursive: true });
    mkdirSync(join(root, "var", "lib", "mcp-gateway"), { recursive: true, mode: 0o700 });
    writeFileSync(join(root, "etc", "mcp-gateway", "gateway.yaml"), local(get("vps/gateway.yaml").body));
    writeFileSync(join(root, "etc", "mcp-gateway", "env"), get("vps/env").body, { mode: 0o600 });

    const unit = parseUnitFile(deployFile("systemd/mcp-gateway.service"));
    serviceEnv = {};
    for (const assignment of unitValues(unit, "Service", "Environment")) {
      const eq = assignment.indexOf("=");
      serviceEnv[assignment.slice(0, eq)] = local(assignment.slice(eq + 1));
    }
    const envFile = (unitValue(unit, "Service", "EnvironmentFile") as string).replace(/^-/, "");
    Object.assign(serviceEnv, parseEnvFile(readFileSync(local(envFile), "utf8")));
    // The one setting the rehearsal adds: GitHub's base URLs are the emulator's.
    serviceEnv.MCP_GATEWAY_IDP__GITHUB__WEB_URL = emulator.webUrl;
    serviceEnv.MCP_GATEWAY_IDP__GITHUB__API_URL = emulator.apiUrl;
    serviceEnv.PATH = path;
  }, 60_000);

  afterAll(async () => {
    await caddyProc?.stop();
    await gateway?.stop();
    await emulator?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("step 8: config check passes, and the unit's service starts on loopback", async () => {
    const [check, ...systemd] = commandLines(get("vps/start").body);
    expect(check).toContain("config check");
    // Run as root would: the env file sourced by the line itself, nothing else given.
    const run = runLine(local(check as string), { ...cleanEnv(), PATH: path, ...githubUrls() }, root);
    expect(await run.exited, run.stderr() + run.stdout()).toBe(0);
    expect(systemd.join("\n")).toContain("systemctl enable --now mcp-gateway");

    // What `systemctl enable --now` starts: the unit's ExecStart with its environment and cwd.
    const unit = parseUnitFile(deployFile("systemd/mcp-gateway.service"));
    expect(unitValue(unit, "Service", "ExecStart")).toBe("mcp-gateway serve");
    gateway = await startServe({
      cwd: local(unitValue(unit, "Service", "WorkingDirectory") as string),
      env: serviceEnv,
      port: gatewayPort,
      timeoutMs: 60_000,
    });
    expect(gateway.stderr()).toContain(`listening on http://127.0.0.1:${gatewayPort}`);
    expect(gateway.stderr()).toContain(`issuer:   ${publicUrl}`);
    expect(gateway.stderr()).toContain("login:    GitHub");
    expect(gateway.services).toContain("time");
  }, 120_000);

  it("step 9: Caddy with the README's Caddyfile and `tls internal` serves the gateway over https", async () => {
    expect(gateway).toBeDefined();
    const written = get("vps/Caddyfile").body;
    expect(written).toContain("tls admin@example.com");
    // The rehearsal the README describes, plus this machine's plumbing: no admin endpoint, the
    // HTTP port (redirects) on a free port, no attempt to install the CA into the system store.
    const rehearsal = local(written).replace("tls admin@example.com", "tls internal");
    const httpPort = await freePort();
    const file = join(root, "etc", "caddy", "Caddyfile");
    writeFileSync(file, `{\n\tadmin off\n\thttp_port ${httpPort}\n\tskip_install_trust\n}\n\n${rehearsal}`);
    const home = join(root, "caddy-home");
    caddyProc = startProcess(CADDY, ["run", "--config", file, "--adapter", "caddyfile"], {
      cwd: root,
      env: {
        PATH: process.env.PATH,
        HOME: home,
        XDG_DATA_HOME: join(home, "data"),
        XDG_CONFIG_HOME: join(home, "config"),
      },
    });
    await caddyProc.waitFor(/serving initial configuration/, 30_000);
    // The local CA signs the certificate in the background: wait for it, not for a fixed time.
    await caddyProc.waitFor(/certificate obtained successfully/, 30_000);
    caRoot = join(home, "data", "caddy", "pki", "authorities", "local", "root.crt");
    expect(existsSync(caRoot), caddyProc.output()).toBe(true);
  }, 60_000);

  it("step 10: curl /healthz, `mcp-gateway login` through GitHub, then a tool call through `connect`", async () => {
    expect(caRoot).toBeDefined();
    const [curl, login] = commandLines(get("vps/check").body);
    expect(curl).toMatch(/^curl /);
    const health = runLine(local(curl as string), { ...cleanEnv(), CURL_CA_BUNDLE: caRoot }, root);
    expect(await health.exited, health.stderr()).toBe(0);
    expect(health.stdout()).toContain("ok");

    // The laptop: the CLI trusts Caddy's root (NODE_EXTRA_CA_CERTS), its "browser" prints
    // nothing and the test plays the person, over https with the same root.
    const laptop = { ...cliEnv(clientDir), PATH: path, NODE_EXTRA_CA_CERTS: caRoot, BROWSER: "true" };
    const serviceUrl = `${publicUrl}/time/mcp`;
    expect(local(login as string)).toBe(`mcp-gateway login ${serviceUrl}`);
    const run = runLine(local(login as string), laptop, root);
    const authorizationUrl = await authorizationUrlIn(run.stderr, () => run.child.exitCode === null, 30_000);
    expect(authorizationUrl.origin).toBe(publicUrl);
    emulator.requests.length = 0;
    await browserLogin(new Browser({}, trustingFetch(readFileSync(caRoot, "utf8"))), authorizationUrl);
    expect(await run.exited, run.stderr()).toBe(0);
    expect(emulator.requests).toContain("/login/oauth/authorize");
    expect(emulator.requests).toContain("/api/v3/user");

    const credentials = JSON.parse(readFileSync(join(clientDir, "credentials.json"), "utf8")) as {
      servers: Record<string, { tokens: { access_token: string } }>;
    };
    const token = credentials.servers[serviceUrl]?.tokens.access_token as string;
    expect(decodeJwt(token)).toMatchObject({ iss: publicUrl, aud: serviceUrl, preferred_username: "alice" });

    await expectToolCall(serviceUrl, laptop);
  }, 180_000);

  it("backup, then restore into a fresh data directory: the login made before still works", async () => {
    expect(gateway).toBeDefined();
    const [backup, ...upgrade] = commandLines(get("upgrade/backup").body);
    expect(backup).toMatch(/^mcp-gateway admin backup \/var\/backups\//);
    mkdirSync(join(root, "var", "backups"), { recursive: true });
    // As the README says to run admin: the service's config and environment.
    const asService = { ...cleanEnv(serviceEnv) };
    const saved = runLine(local(backup as string), asService, root);
    expect(await saved.exited, saved.stderr()).toBe(0);
    expect(saved.stdout()).toMatch(/wrote \d+ entries to /);
    // `npm install -g` of a newer tarball and `systemctl restart` are packaging.test.ts's and
    // systemd.test.ts's; here the restart is a stop and a start.
    expect(upgrade.join("\n")).toContain("systemctl restart mcp-gateway");

    const [stop, restore, start] = commandLines(get("upgrade/restore").body);
    expect([stop, start]).toEqual(["systemctl stop mcp-gateway", "systemctl start mcp-gateway"]);
    await gateway?.stop();
    gateway = undefined;
    const fresh = join(root, "var", "lib", "mcp-gateway-new");
    mkdirSync(fresh, { recursive: true, mode: 0o700 });
    const newMachine = { ...asService, MCP_GATEWAY_DATA_DIR: fresh };
    const restored = runLine(local(restore as string), cleanEnv(newMachine), root);
    expect(await restored.exited, restored.stderr()).toBe(0);
    expect(restored.stdout()).toMatch(/restored \d+ entries from /);
    gateway = await startServe({ cwd: fresh, env: newMachine, port: gatewayPort, timeoutMs: 60_000 });

    const laptop = { ...cliEnv(clientDir), PATH: path, NODE_EXTRA_CA_CERTS: caRoot, BROWSER: "true" };
    await expectToolCall(`${publicUrl}/time/mcp`, laptop);
  }, 180_000);

  /** GitHub's base URLs for a command run outside the service, as the service has them. */
  function githubUrls() {
    return {
      MCP_GATEWAY_IDP__GITHUB__WEB_URL: emulator.webUrl,
      MCP_GATEWAY_IDP__GITHUB__API_URL: emulator.apiUrl,
    };
  }
});

/** `mcp-gateway connect URL` under the MCP SDK's stdio client: tools listed, one called. */
async function expectToolCall(serviceUrl: string, env: Record<string, string>): Promise<void> {
  const client = new Client({ name: "recipe-client", version: "1.0.0" });
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, "connect", serviceUrl],
    env,
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  try {
    await client.connect(transport);
    const tools = await client.listTools();
    expect(tools.tools.map((t) => t.name)).toContain("get_current_time");
    const result = await client.callTool({
      name: "get_current_time",
      arguments: { timezone: "Europe/Berlin" },
    });
    expect(result.isError, stderr).toBeFalsy();
    expect(JSON.stringify(result.content)).toContain("Europe/Berlin");
  } catch (err) {
    throw new Error(`${(err as Error).message}; connect's stderr: ${stderr}`);
  } finally {
    await client.close();
  }
}

describe.skipIf(!BUILT && process.env.CI !== "true")("README Deploy: on your own machine", () => {
  let dir: string;
  let gateway: ServeProcess | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "mcpgw-local-"));
  });
  afterAll(async () => {
    await gateway?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("`mcp-gateway serve` without a config, then `mcp-gateway login` as admin and a tool call", async () => {
    const [serve, login] = commandLines(get("local/serve").body);
    expect(serve).toBe("mcp-gateway serve");
    // Port 8080 is a free port here; serve as written otherwise (no config, this directory).
    const port = await freePort();
    gateway = await startServe({ cwd: dir, port, timeoutMs: 60_000 });
    expect(gateway.stderr()).toContain(`listening on http://127.0.0.1:${port}`);
    expect(gateway.password).toBeTruthy();
    const serviceUrl = `http://localhost:${port}/time/mcp`;
    expect(gateway.stderr()).toContain(`service:  ${serviceUrl}`);

    const clientDir = join(dir, "credentials");
    const laptop = { ...cliEnv(clientDir), PATH: `${binDir(dir)}:${process.env.PATH}`, BROWSER: "true" };
    const line = (login as string).replace("localhost:8080", `localhost:${port}`);
    expect(line).toBe(`mcp-gateway login ${serviceUrl}`);
    const run = runLine(line, laptop, dir);
    const authorizationUrl = await authorizationUrlIn(run.stderr, () => run.child.exitCode === null, 30_000);
    await browserLogin(new Browser(), authorizationUrl, {
      username: "admin",
      password: gateway.password as string,
    });
    expect(await run.exited, run.stderr()).toBe(0);
    await expectToolCall(serviceUrl, laptop);
    // The admin CLI sees the login's client, in the same directory's store.
    const clients = cli(["admin", "clients", "list"], { cwd: dir, env: { MCP_GATEWAY_PORT: String(port) } });
    expect(clients.stdout).toContain("mcp-gateway CLI");
  }, 180_000);
});

describe.skipIf(!BUILT && process.env.CI !== "true")(
  "README Deploy: behind Traefik (labels checked; Traefik itself is not run)",
  () => {
    interface ComposeService {
      environment: Record<string, string>;
      labels: Record<string, string>;
    }
    const compose = parse(get("traefik/compose.yaml").body) as { services: Record<string, ComposeService> };
    const gatewayService = compose.services.gateway as ComposeService;
    const notes = compose.services.notes as ComposeService;
    const labels = { ...gatewayService.labels, ...notes.labels };
    let dir: string;
    let gateway: ServeProcess | undefined;

    afterAll(async () => {
      await gateway?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("the labels: ForwardAuth names the service, Traefik's own forwarding headers, the gateway's identity, no credentials", () => {
      const address = new URL(labels["traefik.http.middlewares.notes-auth.forwardauth.address"] as string);
      expect(address.pathname).toBe("/verify");
      expect([...address.searchParams]).toEqual([["service", "notes"]]);
      // The host and port are the gateway's: its compose name and the port its router sends to.
      expect(address.hostname).toBe("gateway");
      expect(address.port).toBe(labels["traefik.http.services.gateway.loadbalancer.server.port"]);
      // The service is one the gateway has (its audience and policy come from there).
      expect(gatewayService.environment.MCP_GATEWAY_SERVICES__NOTES__URL).toMatch(/^http:\/\/notes:3000\//);
      expect(labels["traefik.http.middlewares.notes-auth.forwardauth.trustForwardHeader"]).toBe("false");

      const identity = validateConfig({}).gateway.identity_headers;
      expect(
        labels["traefik.http.middlewares.notes-auth.forwardauth.authResponseHeaders"]?.split(","),
      ).toEqual([identity.user_id, identity.user_name, identity.user_email, identity.client_id]);

      expect(labels["traefik.http.routers.notes.rule"]).toContain("Path(`/notes/mcp`)");
      const chain = labels["traefik.http.routers.notes.middlewares"]?.split(",") ?? [];
      expect(chain[0]).toBe("notes-auth");
      expect(chain).toContain("no-credentials");
      expect(
        labels["traefik.http.middlewares.no-credentials.headers.customrequestheaders.Authorization"],
      ).toBe("");
      expect(labels["traefik.http.middlewares.no-credentials.headers.customrequestheaders.Cookie"]).toBe("");
    });

    it("the gateway started from the snippet's environment answers that /verify as Traefik needs", async () => {
      dir = mkdtempSync(join(tmpdir(), "mcpgw-traefik-"));
      const port = await freePort();
      // The host name is this machine's address here (and http: no Traefik terminates TLS).
      const base = `http://127.0.0.1:${port}`;
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(gatewayService.environment))
        env[k] = v.replace("https://auth.example.com", base);
      gateway = await startServe({ cwd: dir, env, port, args: ["--no-builtins"], timeoutMs: 60_000 });
      expect(gateway.services).toEqual(["notes"]);
      const verify = new URL(labels["traefik.http.middlewares.notes-auth.forwardauth.address"] as string);
      verify.host = `127.0.0.1:${port}`;
      // What Traefik sends: the client's headers plus its own X-Forwarded-*.
      const traefik = {
        "x-forwarded-method": "POST",
        "x-forwarded-proto": "https",
        "x-forwarded-host": `127.0.0.1:${port}`,
        "x-forwarded-uri": "/notes/mcp",
      };
      const refused = await fetch(verify, { headers: traefik });
      expect(refused.status).toBe(401);
      expect(refused.headers.get("www-authenticate")).toContain(
        `resource_metadata="${base}/.well-known/oauth-protected-resource/notes/mcp"`,
      );

      const { accessToken, clientId } = await accessTokenFor(base, [`${base}/notes/mcp`], {
        username: "admin",
        password: gateway.password as string,
      });
      const allowed = await fetch(verify, {
        headers: { ...traefik, authorization: `Bearer ${accessToken}` },
      });
      expect(allowed.status).toBe(200);
      const names =
        labels["traefik.http.middlewares.notes-auth.forwardauth.authResponseHeaders"]?.split(",") ?? [];
      expect(Object.fromEntries(names.map((n) => [n, allowed.headers.get(n)]))).toMatchObject({
        "X-User-Id": "admin",
        "X-Auth-Client-Id": clientId,
      });
      for (const name of names) expect(allowed.headers.has(name), name).toBe(true);
    }, 120_000);
  },
);

describe.skipIf(!BUILT && process.env.CI !== "true")("README Deploy: Redis and several instances", () => {
  let redis: TestRedis | undefined;
  let dir: string;
  const instances: ServeProcess[] = [];

  afterAll(async () => {
    for (const instance of instances) await instance.stop();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("two instances on the snippet's config: a token from one is accepted, refreshed and revoked by the other", async (ctx) => {
    redis = await startRedis({ password: "recipe-redis-password" });
    if (!redis) return ctx.skip();
    dir = mkdtempSync(join(tmpdir(), "mcpgw-instances-"));
    const [portA, portB] = [await freePort(), await freePort()];
    const issuer = `http://127.0.0.1:${portA}`;
    const written = get("redis/gateway.yaml").body;
    expect(written).toContain("redis://:REDIS_PASSWORD@10.0.0.5:6379");
    writeFileSync(
      join(dir, "gateway.yaml"),
      written
        .replace("https://auth.example.com", issuer)
        .replace("redis://:REDIS_PASSWORD@10.0.0.5:6379", redis.url),
    );
    // Each instance its own data_dir: nothing but the store and the secret is shared.
    for (const [name, port] of [
      ["a", portA],
      ["b", portB],
    ] as const) {
      mkdirSync(join(dir, name));
      instances.push(
        await startServe({
          cwd: dir,
          port,
          args: ["--config", join(dir, "gateway.yaml"), "--no-builtins"],
          env: {
            MCP_GATEWAY_DATA_DIR: join(dir, name),
            MCP_GATEWAY_SERVICES__NOTES__URL: "http://127.0.0.1:9/mcp",
          },
          timeoutMs: 60_000,
        }),
      );
    }
    const [a, b] = instances as [ServeProcess, ServeProcess];
    expect(a.stderr()).toContain("store:    redis");
    // One admin for both: the first instance made it, the second found it in Redis.
    expect(a.password ?? b.password).toBeTruthy();
    expect(a.password && b.password).toBeFalsy();

    const resource = `${issuer}/notes/mcp`;
    const { accessToken, refreshToken, clientId } = await accessTokenFor(a.base, [resource], {
      username: "admin",
      password: (a.password ?? b.password) as string,
    });
    const verifyOn = (instance: ServeProcess, token: string) =>
      fetch(`${instance.base}/verify?service=notes`, { headers: { authorization: `Bearer ${token}` } });
    expect((await verifyOn(b, accessToken)).status).toBe(200);

    const refreshed = await tokenRequest(b.base, {
      grant_type: "refresh_token",
      refresh_token: refreshToken as string,
      client_id: clientId,
    });
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    const next = refreshed.body.refresh_token as string;
    expect((await verifyOn(a, refreshed.body.access_token as string)).status).toBe(200);

    const revoked = await fetch(`${a.base}/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: next, token_type_hint: "refresh_token", client_id: clientId }),
    });
    expect(revoked.status).toBe(200);
    const after = await tokenRequest(b.base, {
      grant_type: "refresh_token",
      refresh_token: next,
      client_id: clientId,
    });
    expect(after.body.error).toBe("invalid_grant");
  }, 180_000);
});

describe("README Deploy: GitHub organisations and teams", () => {
  let emulator: GitHubEmulator;
  let gw: RunningGateway;

  beforeAll(async () => {
    emulator = await startGitHubEmulator({});
    const tree = parse(get("github/teams.yaml").body) as {
      idp: { github: Record<string, unknown> };
      services: Record<string, Record<string, unknown>>;
    };
    Object.assign(tree.idp.github, {
      client_id: emulator.clientId,
      client_secret: emulator.clientSecret,
      web_url: emulator.webUrl,
      api_url: emulator.apiUrl,
    });
    gw = await startFullGateway(tree);
    emulator.callbackUrl = `${gw.url}/callback`;
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
    await emulator?.stop();
  });

  /** A GitHub login through the gateway, then /verify for the notes service with its token. */
  async function attempt(user: EmulatorUser): Promise<{ login: "refused" } | { login: "ok"; notes: number }> {
    emulator.setUser(user);
    const client = await registerClient(gw.url);
    const { verifier, challenge } = pkcePair();
    const start = authorizeUrl(gw.url, {
      client_id: client.client_id,
      code_challenge: challenge,
      resource: `${gw.url}/notes/mcp`,
    });
    let back: URL;
    try {
      back = await browserLogin(new Browser(), new URL(start), undefined, false);
    } catch (err) {
      expect((err as Error).message).toMatch(/^stopped on a page: 403/);
      return { login: "refused" };
    }
    const tokens = await tokenRequest(gw.url, {
      grant_type: "authorization_code",
      client_id: client.client_id,
      code: back.searchParams.get("code") as string,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
    });
    expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
    const verify = await fetch(`${gw.url}/verify?service=notes`, {
      headers: { authorization: `Bearer ${tokens.body.access_token as string}` },
    });
    return { login: "ok", notes: verify.status };
  }

  it("org members and the listed user log in; only the team reaches the service; others are refused", async () => {
    const platform = { id: 1, login: "alice", orgs: ["acme"], teams: [{ org: "acme", slug: "platform" }] };
    expect(await attempt(platform)).toEqual({ login: "ok", notes: 200 });
    expect(await attempt({ id: 2, login: "bob", orgs: ["acme"] })).toEqual({ login: "ok", notes: 403 });
    expect(await attempt({ id: 3, login: "outside-contractor" })).toEqual({ login: "ok", notes: 403 });
    expect(await attempt({ id: 4, login: "mallory", orgs: ["elsewhere"] })).toEqual({ login: "refused" });
  }, 120_000);
});
