/**
 * deploy/compose/compose.yaml and the Dockerfile's runtime stage, run on this host, which has no
 * container engine: every command line and environment they give, from the files themselves.
 *
 * - compose.yaml is read with deploy/compose/.env.example as its .env (compose's interpolation:
 *   `${VAR}`, `${VAR:-default}`, `${VAR:?error}`); the Dockerfile's runtime stage gives ENV,
 *   WORKDIR, USER, HEALTHCHECK and CMD.
 * - redis-server runs with the compose redis service's command line; its health check is the
 *   one compose runs. The gateway runs with the image's ENV plus the gateway service's
 *   environment, its command, in its WORKDIR, as its USER (uid 1000, `node` in the Node image)
 *   when this test runs as root. Then the image's HEALTHCHECK command. Then Caddy with the
 *   compose Caddyfile and the caddy service's command and environment.
 *
 * What a host cannot be, and is substituted (each substitution is asserted to apply, so a
 * changed file cannot slip past it):
 * - container names and ports: `redis:6379` and `gateway:8080` become 127.0.0.1 and free ports
 *   (MCP_GATEWAY_PORT over the image's 8080), Caddy's 80/443 become free ports (http_port,
 *   https_port); the compose network's subnet in MCP_GATEWAY_TRUST_PROXY becomes 127.0.0.1,
 *   where Caddy connects from here.
 * - paths in the image: /data and /opt/mcp-gateway (the npm prefix, here a link to this
 *   checkout's bin/) become temp directories; Caddy's /data and /config too.
 * - the certificate: automatic HTTPS cannot get one from Let's Encrypt here, so Caddy runs with
 *   `local_certs` (its own CA, as `tls internal` does) and `skip_install_trust`; the client
 *   trusts that CA and resolves auth.example.com to 127.0.0.1. Caddy's admin endpoint is off
 *   (other tests run Caddy on this machine too).
 * - GitHub: the emulator in test/support, through the GitHub Enterprise base-URL settings, with
 *   the OAuth app credentials of .env.example and the callback URL it tells users to register.
 */
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Agent, buildConnector, type Dispatcher, getGlobalDispatcher, setGlobalDispatcher } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkBinary } from "../support/binaries.js";
import {
  type ComposeProject,
  type ComposeService,
  type DockerStage,
  parseEnvFile,
  readCompose,
  readDockerfile,
} from "../support/deploy-files.js";
import { type GitHubEmulator, startGitHubEmulator } from "../support/github-emulator.js";
import {
  authorizeUrl,
  Browser,
  formField,
  pkcePair,
  REDIRECT_URI,
  registerClient,
  tokenRequest,
} from "../support/oauth-client.js";
import { CADDY } from "../support/proxies.js";
import { readableBy, runToEnd, type Spawned, startProcess } from "../support/spawned.js";
import { freePort } from "../support/upstream.js";

const ROOT = resolve(import.meta.dirname, "../..");
const COMPOSE_DIR = join(ROOT, "deploy/compose");
const BUILT = existsSync(join(ROOT, "dist/cli/main.js"));
const caddy = checkBinary(CADDY);
const redisServer = checkBinary("/usr/bin/redis-server");
/** The Node image's unprivileged user. */
const IMAGE_USERS: Record<string, { uid: number; gid: number }> = { node: { uid: 1000, gid: 1000 } };
/** The caddy image's own ENV (its Dockerfile): where it keeps certificates and config. */
const CADDY_IMAGE_ENV = { XDG_CONFIG_HOME: "/config", XDG_DATA_HOME: "/data" };

const vars = parseEnvFile(readFileSync(join(COMPOSE_DIR, ".env.example"), "utf8"));
const project: ComposeProject = readCompose(join(COMPOSE_DIR, "compose.yaml"), vars);
/** The base image's PATH: this host's, without the node_modules/.bin entries npx puts first. */
const BASE_PATH = (process.env.PATH ?? "/usr/bin:/bin")
  .split(":")
  .filter((p) => !p.includes("node_modules"))
  .join(":");
const runtime = readDockerfile(join(ROOT, "Dockerfile"), { PATH: BASE_PATH }).find(
  (s) => s.name === "runtime",
) as DockerStage;
const PUBLIC_HOST = `auth.${vars.BASE_DOMAIN}`;
const PUBLIC_URL = `https://${PUBLIC_HOST}`;

/** A compose service by name (the test fails on a missing one rather than on an undefined). */
function service(name: string): ComposeService {
  const found = project.services[name];
  if (!found) throw new Error(`compose.yaml has no service ${name}`);
  return found;
}

/** Replaces `from` by `to` in `text`, and fails if `from` is not there. */
function substitute(text: string, from: string | RegExp, to: string): string {
  const replaced = text.replace(from, to);
  if (replaced === text) throw new Error(`substitution ${from} -> ${to} did not apply to: ${text}`);
  return replaced;
}

describe("the Dockerfile and compose.yaml, read", () => {
  it("the runtime stage: non-root, /data as a volume and data_dir, 0.0.0.0, HEALTHCHECK with node's fetch", () => {
    expect(runtime).toBeDefined();
    expect(runtime.user).toBe("node");
    expect(runtime.volumes).toContain("/data");
    expect(runtime.env.MCP_GATEWAY_DATA_DIR).toBe("/data");
    expect(runtime.env.MCP_GATEWAY_HOST).toBe("0.0.0.0");
    expect(runtime.expose).toContain(runtime.env.MCP_GATEWAY_PORT);
    expect(runtime.workdir).toBe("/data");
    expect(runtime.cmd).toEqual(["mcp-gateway", "serve"]);
    expect(runtime.healthcheck?.argv[0]).toBe("node");
    expect(runtime.healthcheck?.argv.join(" ")).not.toMatch(/curl|wget/);
    expect(runtime.healthcheck?.argv.join(" ")).toContain("/healthz");
  });

  it("the runtime stage holds only the npm prefix the build stage installed, Chromium only on request", () => {
    const stages = readDockerfile(join(ROOT, "Dockerfile"));
    const build = stages.find((s) => s.name === "build") as DockerStage;
    expect(build.runs.join("\n")).toMatch(/npm pack .*&& npm install -g .*--prefix \/opt\/mcp-gateway/);
    expect(runtime.copies).toEqual([
      { from: "build", sources: ["/opt/mcp-gateway"], target: "/opt/mcp-gateway" },
    ]);
    expect(runtime.args.WITH_CHROMIUM).toBe("false");
    const chromium = runtime.runs.find((r) => r.includes("chromium"));
    expect(chromium).toMatch(/^if \[ "\$WITH_CHROMIUM" = "true" \]; then .*apt-get install .*chromium/);
    expect(runtime.env.PATH?.startsWith("/opt/mcp-gateway/bin:")).toBe(true);
  });

  it("compose: the gateway behind Caddy only; Redis with AOF and the .env password; the Python gateway's names", () => {
    const { gateway, redis, caddy: proxy } = project.services as Required<ComposeProject["services"]>;
    expect(gateway?.ports).toEqual([]);
    expect(redis?.ports).toEqual([]);
    expect(proxy?.ports).toEqual(expect.arrayContaining(["80:80", "443:443"]));
    expect(redis?.command).toEqual(
      expect.arrayContaining(["--appendonly", "yes", "--requirepass", vars.REDIS_PASSWORD]),
    );
    for (const name of [
      "BASE_DOMAIN",
      "GITHUB_CLIENT_ID",
      "GITHUB_CLIENT_SECRET",
      "ALLOWED_GITHUB_USERS",
      "REDIS_PASSWORD",
      "CLIENT_LIFETIME",
      "ACCESS_TOKEN_LIFETIME",
      "REFRESH_TOKEN_LIFETIME",
      "MCP_TIME_ENABLED",
    ]) {
      expect(gateway?.environment[name], name).toBe(vars[name]);
    }
    expect(gateway?.environment.REDIS_URL).toBe("redis://redis:6379");
    expect(gateway?.volumes).toContain("gateway-data:/data");
    // docker-init reaps what a stdio server leaves behind (a browser, a shell).
    expect(gateway?.init).toBe(true);
    expect(proxy?.volumes).toContain("./Caddyfile:/etc/caddy/Caddyfile:ro");
  });

  it("compose refuses to start without the secrets (`:?` in their interpolation)", () => {
    const { REDIS_PASSWORD: _, ...without } = vars;
    expect(() => readCompose(join(COMPOSE_DIR, "compose.yaml"), without)).toThrow(/REDIS_PASSWORD/);
  });

  it(".env stays out of git and out of the image", () => {
    expect(readFileSync(join(ROOT, ".gitignore"), "utf8").split("\n")).toContain(".env");
    expect(readFileSync(join(ROOT, ".dockerignore"), "utf8").split("\n")).toEqual(
      expect.arrayContaining([".env", "deploy/compose/.env"]),
    );
  });
});

describe.skipIf(!caddy.available || !redisServer.available || (!BUILT && process.env.CI !== "true"))(
  "compose.yaml's command lines and environments, run on this host",
  { timeout: 90_000 },
  () => {
    let work: string;
    let emulator: GitHubEmulator;
    const ports = { redis: 0, gateway: 0, http: 0, https: 0 };
    const procs: Spawned[] = [];
    let redis: Spawned;
    let gateway: Spawned;
    let gatewayEnv: NodeJS.ProcessEnv;
    let gatewayCwd: string;
    let user: { uid: number; gid: number } | undefined;
    let caddyCa: string;
    let previousDispatcher: Dispatcher;

    beforeAll(async () => {
      work = mkdtempSync(join(tmpdir(), "mcpgw-compose-"));
      for (const k of Object.keys(ports) as Array<keyof typeof ports>) ports[k] = await freePort();
      user = process.getuid?.() === 0 ? IMAGE_USERS[runtime.user as string] : undefined;
      if (
        user &&
        !readableBy(user.uid, user.gid, [
          join(ROOT, "dist/cli/main.js"),
          join(ROOT, "node_modules/fastify/package.json"),
        ])
      ) {
        console.warn(
          `this checkout is not readable by uid ${user.uid}: the gateway runs as this test's user instead`,
        );
        user = undefined;
      }
      const services = project.services;
      const hostAddress = (text: string) =>
        text
          .replace("redis:6379", `127.0.0.1:${ports.redis}`)
          .replace("gateway:8080", `127.0.0.1:${ports.gateway}`);

      // redis: the compose command line, on loopback, a free port, a temp dir for its AOF.
      const redisDir = join(work, "redis-data");
      mkdirSync(redisDir);
      const [redisBin, ...redisArgs] = (service("redis").command ?? []) as [string, ...string[]];
      redis = startProcess(
        redisBin,
        [...redisArgs, "--port", String(ports.redis), "--bind", "127.0.0.1", "--dir", redisDir],
        {
          env: { PATH: process.env.PATH },
        },
      );
      procs.push(redis);
      // Its compose health check, as `depends_on: condition: service_healthy` waits for it.
      const [cli, ...cliArgs] = (service("redis").healthcheck?.test ?? []).slice(1) as [string, ...string[]];
      for (let i = 0; ; i++) {
        const ping = await runToEnd(cli, ["-p", String(ports.redis), ...cliArgs], {
          env: { PATH: process.env.PATH, ...services.redis?.environment },
        });
        if (ping.stdout.trim() === "PONG") break;
        if (i > 100) throw new Error(`redis never healthy: ${ping.stdout}${ping.stderr}\n${redis.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }

      emulator = await startGitHubEmulator({
        clientId: vars.GITHUB_CLIENT_ID,
        clientSecret: vars.GITHUB_CLIENT_SECRET,
        callbackUrl: `${PUBLIC_URL}/callback`,
        user: {
          id: 583231,
          login: (vars.ALLOWED_GITHUB_USERS ?? "").split(",")[0] as string,
          email: "octo@example.com",
        },
      });

      // The gateway: the image's ENV, then the compose environment, in WORKDIR, as USER.
      const data = join(work, "gateway-data");
      const home = join(work, "home-node");
      const prefix = join(work, "opt-mcp-gateway");
      mkdirSync(data);
      mkdirSync(home);
      mkdirSync(join(prefix, "bin"), { recursive: true });
      symlinkSync(join(ROOT, "bin/mcp-gateway.js"), join(prefix, "bin/mcp-gateway"));
      chmodSync(work, 0o755);
      if (user) {
        chownSync(data, user.uid, user.gid);
        chownSync(home, user.uid, user.gid);
      }
      const hostPath = (text: string) =>
        text.replace(/^\/data(?=\/|$)/, data).replaceAll("/opt/mcp-gateway", prefix);
      gatewayEnv = { HOME: home };
      for (const [k, v] of Object.entries(runtime.env)) gatewayEnv[k] = hostPath(v);
      for (const [k, v] of Object.entries(services.gateway?.environment ?? {}))
        gatewayEnv[k] = hostAddress(v);
      gatewayEnv.REDIS_URL = substitute(
        services.gateway?.environment.REDIS_URL ?? "",
        "redis:6379",
        `127.0.0.1:${ports.redis}`,
      );
      gatewayEnv.MCP_GATEWAY_PORT = String(ports.gateway);
      gatewayEnv.MCP_GATEWAY_TRUST_PROXY = substitute(
        services.gateway?.environment.MCP_GATEWAY_TRUST_PROXY ?? "",
        project.networks?.mcp?.ipam?.config?.[0]?.subnet ?? "(no subnet)",
        "127.0.0.1",
      );
      gatewayEnv.MCP_GATEWAY_IDP__GITHUB__WEB_URL = emulator.webUrl;
      gatewayEnv.MCP_GATEWAY_IDP__GITHUB__API_URL = emulator.apiUrl;
      const [command, ...args] = (services.gateway?.command ?? [...runtime.entrypoint, ...runtime.cmd]) as [
        string,
        ...string[],
      ];
      gatewayCwd = hostPath(runtime.workdir as string);
      gateway = startProcess(command, args, {
        cwd: gatewayCwd,
        env: gatewayEnv,
        ...(user ?? {}),
      });
      procs.push(gateway);
      await gateway.waitFor(/listening on/, 60_000);

      // Caddy: the compose Caddyfile (its bind mount), the caddy service's command and environment.
      const caddyfileMount = services.caddy?.volumes.find((v) =>
        v.endsWith(":/etc/caddy/Caddyfile:ro"),
      ) as string;
      let caddyfile = readFileSync(resolve(COMPOSE_DIR, caddyfileMount.split(":")[0] as string), "utf8");
      caddyfile = substitute(
        caddyfile,
        "reverse_proxy gateway:8080",
        `reverse_proxy 127.0.0.1:${ports.gateway}`,
      );
      caddyfile = substitute(
        caddyfile,
        /^\{\n/m,
        `{\n\tlocal_certs\n\tskip_install_trust\n\tadmin off\n\thttp_port ${ports.http}\n\thttps_port ${ports.https}\n`,
      );
      const etcCaddy = join(work, "etc-caddy");
      mkdirSync(etcCaddy);
      writeFileSync(join(etcCaddy, "Caddyfile"), caddyfile);
      const caddyEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: join(work, "caddy-home") };
      for (const [k, v] of Object.entries(CADDY_IMAGE_ENV)) caddyEnv[k] = join(work, `caddy${v}`);
      Object.assign(caddyEnv, services.caddy?.environment);
      const [caddyBin, ...caddyArgs] = (services.caddy?.command ?? []).map((a) =>
        a.replace("/etc/caddy/Caddyfile", join(etcCaddy, "Caddyfile")),
      ) as [string, ...string[]];
      const proxy = startProcess(caddyBin === "caddy" ? CADDY : caddyBin, caddyArgs, {
        env: caddyEnv,
        cwd: work,
      });
      procs.push(proxy);
      caddyCa = join(caddyEnv.XDG_DATA_HOME as string, "caddy/pki/authorities/local/root.crt");
      for (let i = 0; !existsSync(caddyCa); i++) {
        if (i > 300 || proxy.child.exitCode !== null) throw new Error(`caddy made no CA: ${proxy.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }

      // Every connection to *.example.com goes to Caddy's ports on loopback, trusting its CA:
      // what DNS and a public certificate do for a real deployment.
      const ca = readFileSync(caddyCa);
      const connect = buildConnector({ ca });
      previousDispatcher = getGlobalDispatcher();
      setGlobalDispatcher(
        new Agent({
          connect: (opts, callback) => {
            if (!opts.hostname.endsWith(`.${vars.BASE_DOMAIN}`)) return connect(opts, callback);
            const port = opts.protocol === "https:" ? ports.https : ports.http;
            return connect(
              { ...opts, hostname: "127.0.0.1", servername: opts.hostname, port: String(port) },
              callback,
            );
          },
        }),
      );
      // Caddy listens before its certificate is issued: wait for a real TLS answer.
      for (let i = 0; ; i++) {
        try {
          await fetch(`${PUBLIC_URL}/healthz`);
          break;
        } catch (err) {
          if (i > 100) throw new Error(`no HTTPS from caddy: ${(err as Error).message}\n${proxy.output()}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }, 90_000);

    afterAll(async () => {
      if (previousDispatcher) setGlobalDispatcher(previousDispatcher);
      for (const p of procs.reverse()) await p.stop();
      if (process.env.DEBUG_COMPOSE)
        writeFileSync("/tmp/compose-gw.log", procs.map((p) => p.output()).join("\n=====\n"));
      await emulator?.stop();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    it("the gateway starts on 0.0.0.0 with the Redis store, GitHub login and the issuer from BASE_DOMAIN", async () => {
      const out = gateway.output();
      expect(out).toContain(`listening on http://127.0.0.1:${ports.gateway}`);
      // 0.0.0.0: it answers on this host's other addresses too, as it must on a container's.
      const external = Object.values(networkInterfaces())
        .flat()
        .find((a) => a && a.family === "IPv4" && !a.internal)?.address;
      if (external) expect((await fetch(`http://${external}:${ports.gateway}/healthz`)).status).toBe(200);
      expect(out).toContain(`issuer:   ${PUBLIC_URL}`);
      expect(out).toMatch(new RegExp(`store: +redis redis://(:\\*\\*\\*@)?127\\.0\\.0\\.1:${ports.redis}`));
      expect(out).toMatch(/login: +GitHub/i);
      expect(out).toContain(`service:  ${PUBLIC_URL}/time/mcp`);
      for (const secret of [vars.REDIS_PASSWORD, vars.GITHUB_CLIENT_SECRET, vars.GATEWAY_JWT_SECRET]) {
        expect(out).not.toContain(secret);
      }
    });

    it("the image's HEALTHCHECK command passes against it (and fails when nothing answers)", async () => {
      const [command, ...args] = (runtime.healthcheck?.argv ?? []) as [string, ...string[]];
      const ok = await runToEnd(command, args, { env: gatewayEnv, ...(user ?? {}) });
      expect(ok.status, ok.stderr).toBe(0);
      const nobody = await runToEnd(command, args, {
        env: { ...gatewayEnv, MCP_GATEWAY_PORT: String(await freePort()) },
        ...(user ?? {}),
      });
      expect(nobody.status).toBe(1);
    });

    it("Caddy serves HTTPS for auth.BASE_DOMAIN with the gateway's metadata, and redirects HTTP to it", async () => {
      const meta = (await (
        await fetch(`${PUBLIC_URL}/.well-known/oauth-authorization-server`)
      ).json()) as Record<string, unknown>;
      expect(meta.issuer).toBe(PUBLIC_URL);
      expect(meta.authorization_endpoint).toBe(`${PUBLIC_URL}/authorize`);
      const plain = await fetch(`http://${PUBLIC_HOST}/time/mcp`, { redirect: "manual" });
      expect(plain.status).toBe(308);
      expect(plain.headers.get("location")).toMatch(
        new RegExp(`^https://${PUBLIC_HOST.replaceAll(".", "\\.")}(:\\d+)?/time/mcp$`),
      );
      const challenge = await fetch(`${PUBLIC_URL}/time/mcp`, { method: "POST", body: "{}" });
      expect(challenge.status).toBe(401);
      expect(challenge.headers.get("www-authenticate")).toContain(
        `resource_metadata="${PUBLIC_URL}/.well-known/oauth-protected-resource/time/mcp"`,
      );
    });

    it("the gateway sees the client's address from Caddy, never the one a client claims", async () => {
      // From 127.0.0.2 (still loopback): Caddy's X-Forwarded-For says 127.0.0.2 whatever the client sent.
      const local = new Agent({
        localAddress: "127.0.0.2",
        connect: (opts, callback) =>
          buildConnector({ ca: readFileSync(caddyCa) })(
            { ...opts, hostname: "127.0.0.1", servername: PUBLIC_HOST, port: String(ports.https) },
            callback,
          ),
      });
      const { fetch: undiciFetch } = await import("undici");
      const before = gateway.output().length;
      const res = await undiciFetch(`${PUBLIC_URL}/healthz?probe=forwarded`, {
        dispatcher: local,
        headers: { "x-forwarded-for": "203.0.113.66" },
      });
      expect(res.status).toBe(200);
      await local.close();
      let line: string | undefined;
      for (let i = 0; i < 100 && !line; i++) {
        line = gateway
          .output()
          .slice(before)
          .split("\n")
          .find((l) => l.includes('"path":"/healthz"'));
        if (!line) await new Promise((r) => setTimeout(r, 50));
      }
      expect(line).toBeDefined();
      expect(line).toContain('"ip":"127.0.0.2"');
      expect(line).not.toContain("203.0.113.66");
    });

    it("a user on ALLOWED_GITHUB_USERS logs in through Caddy and GitHub, and an MCP client calls a tool", async () => {
      const client = await registerClient(PUBLIC_URL);
      const { verifier, challenge } = pkcePair();
      const browser = new Browser();
      const resource = `${PUBLIC_URL}/time/mcp`;
      let res = await browser.get(
        authorizeUrl(PUBLIC_URL, { client_id: client.client_id, code_challenge: challenge, resource }),
      );
      let back: URL | undefined;
      for (let hops = 0; hops < 10 && !back; hops++) {
        const location = res.headers.get("location");
        if (res.status === 302 && location) {
          const next = new URL(location, PUBLIC_URL);
          if (`${next.origin}${next.pathname}` === REDIRECT_URI) back = next;
          else res = await browser.get(next.toString());
          continue;
        }
        const html = await res.text();
        expect(html, html.slice(0, 400)).toContain('action="/consent"');
        res = await browser.postForm(`${PUBLIC_URL}/consent`, {
          request: formField(html, "request"),
          csrf: formField(html, "csrf"),
          decision: "allow",
        });
      }
      expect(emulator.requests).toContain("/login/oauth/access_token");
      const code = back?.searchParams.get("code");
      expect(code, String(back)).toBeTruthy();
      const tokens = await tokenRequest(PUBLIC_URL, {
        grant_type: "authorization_code",
        client_id: client.client_id,
        code: code as string,
        code_verifier: verifier,
        redirect_uri: REDIRECT_URI,
      });
      expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);

      const mcp = new Client({ name: "compose-on-host", version: "1.0.0" });
      await mcp.connect(
        new StreamableHTTPClientTransport(new URL(resource), {
          requestInit: { headers: { authorization: `Bearer ${tokens.body.access_token as string}` } },
        }),
      );
      try {
        const result = await mcp.callTool({
          name: "get_current_time",
          arguments: { timezone: "Asia/Tokyo" },
        });
        expect((result.structuredContent as { datetime: string }).datetime).toMatch(/\+09:00$/);
      } finally {
        await mcp.close();
      }
    });

    it("Redis keeps the gateway's data in its append-only file", async () => {
      const aof = await runToEnd("find", [join(work, "redis-data"), "-name", "*.aof"], {});
      expect(aof.stdout.trim().split("\n").filter(Boolean).length).toBeGreaterThan(0);
      const keys = await runToEnd("redis-cli", ["-p", String(ports.redis), "--no-auth-warning", "dbsize"], {
        env: { PATH: process.env.PATH, REDISCLI_AUTH: vars.REDIS_PASSWORD },
      });
      expect(Number(keys.stdout.trim())).toBeGreaterThan(0);
    });

    it("the gateway stops cleanly on SIGTERM (docker stop)", async () => {
      expect(await gateway.stop()).toBe(0);
    });

    it("a gateway.yaml in the data volume is the image's config file (WORKDIR /data)", async () => {
      const workdir = gatewayCwd;
      writeFileSync(join(workdir, "gateway.yaml"), "log_requests: false\n");
      if (user) chownSync(join(workdir, "gateway.yaml"), user.uid, user.gid);
      const [command] = (service("gateway").command ?? runtime.cmd) as [string];
      const check = await runToEnd(command, ["config", "check"], {
        cwd: workdir,
        env: gatewayEnv,
        ...(user ?? {}),
      });
      expect(check.stdout + check.stderr).toContain("config ok (gateway.yaml)");
    });
  },
);
