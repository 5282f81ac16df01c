/**
 * Configuration as a user gives it, through the real CLI: the built-in services are one config
 * layer (enabled, disabled and given a policy from the environment and from YAML, validated
 * after merging), `config check|show`, `doctor` and `admin` see what `serve` sees, client-side
 * variables are not server config, and a wrong key says where it came from.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterEach, describe, expect, it } from "vitest";
import { checkBinary } from "../support/binaries.js";
import { accessTokenFor } from "../support/login.js";
import { postInitialize } from "../support/mcp-http.js";
import { BUILT, cli, type ServeProcess, serveRefused, startServe } from "./serve-process.js";

const tmux = checkBinary("/usr/bin/tmux");

const dirs: string[] = [];
const running: ServeProcess[] = [];
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "mcpgw-cfgpaths-"));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function serve(opts: Parameters<typeof startServe>[0]): Promise<ServeProcess> {
  const s = await startServe(opts);
  running.push(s);
  return s;
}

/** Tool names of a service, through a real MCP client with a token for it. */
async function toolsOf(s: ServeProcess, service: string, login: { username: string; password: string }) {
  const issuer = `http://localhost:${s.port}`;
  const { accessToken } = await accessTokenFor(s.base, [`${issuer}/${service}/mcp`], login);
  const client = new Client({ name: "config-paths-test", version: "1.0.0" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${s.base}/${service}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${accessToken}` } },
    }),
  );
  try {
    return (await client.listTools()).tools.map((t) => t.name);
  } finally {
    await client.close();
  }
}

function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  expect(lines, stderr).toHaveLength(1);
  return lines[0] as string;
}

// Every case starts processes, several of which hash a password (scrypt): slow on a busy machine.
describe.skipIf(!BUILT && process.env.CI !== "true")(
  "configuration paths (run `npm run build` first)",
  { timeout: 120_000 },
  () => {
    describe("the built-in services are a config layer", () => {
      it.skipIf(!tmux.available)("MCP_TMUX_ENABLED=true starts serve with the tmux service", async () => {
        const s = await serve({ cwd: freshDir(), env: { MCP_TMUX_ENABLED: "true" } });
        expect(s.services).toContain("tmux");
        const tools = await toolsOf(s, "tmux", { username: "admin", password: s.password as string });
        expect(tools).toContain("create_session");
      });

      it("MCP_PLAYWRIGHT_ENABLED=true starts serve with the playwright service", async () => {
        const s = await serve({ cwd: freshDir(), env: { MCP_PLAYWRIGHT_ENABLED: "true" } });
        expect(s.services).toContain("playwright");
        const tools = await toolsOf(s, "playwright", { username: "admin", password: s.password as string });
        expect(tools).toContain("browser_navigate");
      });

      it("a YAML policy on the built-in filesystem is enforced: the listed user gets in, another gets 403", async () => {
        const dir = freshDir();
        writeFileSync(join(dir, "gateway.yaml"), "services:\n  filesystem:\n    allowed_users: [alice]\n");
        for (const name of ["alice", "bob"]) {
          const added = cli(["admin", "users", "add", name, "--password-stdin"], {
            cwd: dir,
            input: `${name}'s password\n`,
          });
          expect(added.status, added.stderr).toBe(0);
        }
        expect(cli(["config", "check"], { cwd: dir }).status).toBe(0);
        const s = await serve({ cwd: dir });
        expect(s.services).toContain("filesystem");

        const tools = await toolsOf(s, "filesystem", { username: "alice", password: "alice's password" });
        expect(tools).toContain("read_text_file");

        const issuer = `http://localhost:${s.port}`;
        const bob = await accessTokenFor(s.base, [`${issuer}/filesystem/mcp`], {
          username: "bob",
          password: "bob's password",
        });
        const refused = await postInitialize(`${s.base}/filesystem/mcp`, {
          authorization: `Bearer ${bob.accessToken}`,
        });
        expect(refused.status).toBe(403);
        // The rest of the built-in's definition is untouched by the policy: still its own command.
        const shown = JSON.parse(cli(["config", "show"], { cwd: dir }).stdout) as {
          services: Record<string, { command?: string; allowed_users?: string[] }>;
        };
        expect(shown.services.filesystem).toMatchObject({
          command: process.execPath,
          allowed_users: ["alice"],
        });
      });

      it("MCP_FILESYSTEM_ENABLED=false leaves the filesystem service out", async () => {
        const s = await serve({ cwd: freshDir(), env: { MCP_FILESYSTEM_ENABLED: "false" } });
        expect(s.services).not.toContain("filesystem");
        expect(s.services).toContain("time");
        expect((await postInitialize(`${s.base}/filesystem/mcp`)).status).toBe(404);
      });

      it("env and args of a built-in come from YAML; a service's own url replaces the built-in", async () => {
        const dir = freshDir();
        writeFileSync(
          join(dir, "gateway.yaml"),
          [
            "services:",
            "  time:",
            "    args: [--local-timezone, Asia/Tokyo]",
            "  memory:",
            "    env: { EXTRA: one }",
            "  fetch:",
            "    url: http://127.0.0.1:9/mcp",
            "",
          ].join("\n"),
        );
        const check = cli(["config", "check"], { cwd: dir });
        expect(check.status, check.stderr).toBe(0);
        const shown = JSON.parse(cli(["config", "show"], { cwd: dir }).stdout) as {
          services: Record<
            string,
            { command?: string; url?: string; args: string[]; env: Record<string, string> }
          >;
        };
        expect(shown.services.time?.args).toEqual(["--local-timezone", "Asia/Tokyo"]);
        expect(shown.services.time?.command).toBe(process.execPath);
        expect(shown.services.memory?.env).toMatchObject({
          EXTRA: "one",
          MEMORY_FILE_PATH: expect.any(String),
        });
        expect(shown.services.fetch).toMatchObject({ url: "http://127.0.0.1:9/mcp", args: [] });
        expect(shown.services.fetch?.command).toBeUndefined();
      });

      it("config check, config show, doctor and admin see the merged config serve sees", () => {
        const dir = freshDir();
        const env = { MCP_TMUX_ENABLED: "true", MCP_EVERYTHING_ENABLED: "false" };
        const check = cli(["config", "check"], { cwd: dir, env });
        expect(check.status, check.stderr).toBe(0);
        const shown = JSON.parse(cli(["config", "show"], { cwd: dir, env }).stdout) as {
          services: Record<string, { enabled: boolean; command?: string }>;
        };
        expect(shown.services.tmux).toMatchObject({ enabled: true, command: process.execPath });
        expect(shown.services.everything?.enabled).toBe(false);
        const bare = JSON.parse(cli(["config", "show", "--no-builtins"], { cwd: dir }).stdout) as {
          services: Record<string, unknown>;
        };
        expect(bare.services).toEqual({});

        const doctor = cli(["doctor"], { cwd: dir, env });
        expect(doctor.stdout).toMatch(/^ok\s+service tmux\b/m);
        expect(doctor.stdout).toMatch(/^ok\s+service everything\s+disabled$/m);
        expect(cli(["doctor", "--no-builtins"], { cwd: dir }).stdout).not.toMatch(/service time\b/);

        const admin = cli(["admin", "users", "list"], { cwd: dir, env });
        expect(admin.status, admin.stderr).toBe(0);
      });
    });

    describe("config show hides secrets", () => {
      it("hides a password in a URL, credentials in a stdio service's env and export headers, keeping their names", () => {
        const dir = freshDir();
        const config = join(dir, "gateway.yaml");
        writeFileSync(
          config,
          JSON.stringify({
            store: { type: "redis", redis: { url: "redis://gw:hunter2-in-url@127.0.0.1:6379/2" } },
            keys: { encryption_secret: "a sealing secret for this test" },
            otel: {
              endpoint: "http://127.0.0.1:4318",
              headers: { "x-honeycomb-team": "otel-api-key-value" },
            },
            services: {
              notes: {
                command: process.execPath,
                env: { OPENAI_API_KEY: "sk-env-value", DATABASE_URL: "postgres://u:db-pass@db/x" },
              },
            },
          }),
        );
        const shown = cli(["config", "show", "--config", config, "--no-builtins"], { cwd: dir });
        expect(shown.status, shown.stderr).toBe(0);
        for (const secret of [
          "hunter2-in-url",
          "otel-api-key-value",
          "sk-env-value",
          "db-pass",
          "a sealing secret",
        ])
          expect(shown.stdout).not.toContain(secret);
        const effective = JSON.parse(shown.stdout) as {
          store: { redis: { url: string } };
          otel: { headers: Record<string, string> };
          services: Record<string, { env: Record<string, string> }>;
        };
        // What is not secret stays readable: where Redis is, which headers and variables are set.
        expect(effective.store.redis.url).toBe("redis://gw:***@127.0.0.1:6379/2");
        expect(Object.keys(effective.otel.headers)).toEqual(["x-honeycomb-team"]);
        expect(effective.services.notes?.env).toEqual({
          OPENAI_API_KEY: "(set)",
          DATABASE_URL: "postgres://u:***@db/x",
        });
      });
    });

    describe("client-side settings are not server config", () => {
      it("MCP_GATEWAY_CLIENT_DIR leaves serve, config check and admin working", async () => {
        const dir = freshDir();
        const env = { MCP_GATEWAY_CLIENT_DIR: join(dir, "client") };
        const check = cli(["config", "check"], { cwd: dir, env });
        expect(check.status, check.stderr).toBe(0);
        expect(JSON.parse(cli(["config", "show"], { cwd: dir, env }).stdout)).not.toHaveProperty(
          "client_dir",
        );
        const s = await serve({ cwd: dir, env });
        expect(s.services).toContain("time");
        const admin = cli(["admin", "users", "list"], { cwd: dir, env });
        expect(admin.status, admin.stderr).toBe(0);
        expect(admin.stdout).toContain('"name":"admin"');
      });
    });

    describe("a wrong key says where it came from", () => {
      it("an unknown key from the environment: exit 2, the variable and the nearest key, one line", () => {
        const dir = freshDir();
        const env = { MCP_GATEWAY_TOKENS__ACESS_TTL: "2h" };
        const expected =
          "config: unknown key tokens.acess_ttl (from MCP_GATEWAY_TOKENS__ACESS_TTL); did you mean tokens.access_ttl?";
        for (const args of [["config", "check"], ["admin", "users", "list"], ["doctor"]]) {
          const res = cli(args, { cwd: dir, env });
          expect(res.status, args.join(" ")).toBe(2);
          expect(oneLine(res.stderr)).toBe(expected);
        }
        const refused = serveRefused({ cwd: dir, env });
        expect(refused.status).toBe(2);
        expect(oneLine(refused.stderr)).toBe(expected);

        const top = serveRefused({ cwd: dir, env: { MCP_GATEWAY_TOKEN__ACCESS_TTL: "2h" } });
        expect(top.status).toBe(2);
        expect(oneLine(top.stderr)).toBe(
          "config: unknown key token (from MCP_GATEWAY_TOKEN__ACCESS_TTL); did you mean tokens?",
        );
      });

      it("an unknown key in the file names the file and the nearest key", () => {
        const dir = freshDir();
        writeFileSync(join(dir, "gateway.yaml"), "services:\n  filesystem:\n    allowed_user: [alice]\n");
        const res = serveRefused({ cwd: dir });
        expect(res.status).toBe(2);
        expect(oneLine(res.stderr)).toBe(
          "config: unknown key services.filesystem.allowed_user (in gateway.yaml); did you mean services.filesystem.allowed_users?",
        );
      });

      it("an invalid value from the environment names the variable, the Python gateway's names included", () => {
        const dir = freshDir();
        const ours = serveRefused({ cwd: dir, env: { MCP_GATEWAY_TOKENS__ACCESS_TTL: "soon" } });
        expect(ours.status).toBe(2);
        expect(oneLine(ours.stderr)).toMatch(
          /^config: tokens\.access_ttl \(from MCP_GATEWAY_TOKENS__ACCESS_TTL\): not a duration: "soon"/,
        );
        const legacy = serveRefused({ cwd: dir, env: { ACCESS_TOKEN_LIFETIME: "soon" } });
        expect(legacy.status).toBe(2);
        expect(oneLine(legacy.stderr)).toMatch(
          /^config: tokens\.access_ttl \(from ACCESS_TOKEN_LIFETIME\): /,
        );
        const service = serveRefused({ cwd: dir, env: { MCP_TIME_ENABLED: "maybe" } });
        expect(service.status).toBe(2);
        expect(oneLine(service.stderr)).toMatch(
          /^config: services\.time\.enabled \(from MCP_TIME_ENABLED\): /,
        );
      });
    });
  },
);
