/**
 * Config layering (defaults < file < legacy env < MCP_GATEWAY_* < flags), durations, and one-line
 * errors that name the key, where it came from, and the nearest valid key.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseDuration } from "../../src/config/duration.js";
import { ConfigError, loadConfig } from "../../src/config/load.js";

const dir = mkdtempSync(join(tmpdir(), "mcpgw-config-"));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("durations", () => {
  it.each([
    [90, 90],
    ["90", 90],
    ["30s", 30],
    ["30m", 1800],
    ["12h", 43_200],
    ["90d", 7_776_000],
    ["2w", 1_209_600],
  ])("%s is %i seconds", (input, seconds) => expect(parseDuration(input)).toBe(seconds));
  it.each(["soon", "1.5h", "-3", "10y", ""])("%s is refused", (input) =>
    expect(() => parseDuration(input)).toThrow(),
  );
});

describe("loadConfig", () => {
  it("has working defaults with no file and no environment", () => {
    const { config, source } = loadConfig({ env: {}, file: undefined });
    expect(source).toBeUndefined();
    expect(config.public_url).toBe("http://localhost:8080");
    expect(config.tokens).toMatchObject({ access_ttl: 3600, refresh_ttl: 2_592_000, code_ttl: 600 });
    expect(config.registration.client_ttl).toBe(7_776_000);
    expect(config.store.type).toBe("sqlite");
    expect(config.idp.type).toBe("local");
  });

  it("public_url follows the port unless set", () => {
    expect(loadConfig({ env: {}, overrides: { port: 9123 } }).config.public_url).toBe(
      "http://localhost:9123",
    );
    expect(
      loadConfig({ env: { MCP_GATEWAY_PUBLIC_URL: "https://mcp.example.com/" } }).config.public_url,
    ).toBe("https://mcp.example.com");
  });

  it("layers file < legacy env < MCP_GATEWAY_* env", () => {
    const path = file(
      "layers.yaml",
      "tokens:\n  access_ttl: 10m\n  refresh_ttl: 1d\nservices:\n  notes:\n    url: http://127.0.0.1:1/mcp\n",
    );
    const { config } = loadConfig({
      file: path,
      env: {
        ACCESS_TOKEN_LIFETIME: "7200",
        MCP_GATEWAY_TOKENS__REFRESH_TTL: "2d",
        MCP_NOTES_ENABLED: "false",
      },
    });
    expect(config.tokens.access_ttl).toBe(7200);
    expect(config.tokens.refresh_ttl).toBe(172_800);
    expect(config.services.notes?.enabled).toBe(false);
  });

  it("accepts the Python gateway's variable names", () => {
    const { config } = loadConfig({
      env: {
        BASE_DOMAIN: "example.com",
        GITHUB_CLIENT_ID: "id",
        GITHUB_CLIENT_SECRET: "secret",
        ALLOWED_GITHUB_USERS: " Alice, bob ,",
        REDIS_URL: "redis://redis:6379/2",
        REDIS_PASSWORD: "pw",
        CLIENT_LIFETIME: "0",
        REFRESH_TOKEN_LIFETIME: "86400",
      },
    });
    expect(config.base_domain).toBe("example.com");
    expect(config.public_url).toBe("https://auth.example.com");
    expect(config.idp.type).toBe("github");
    expect(config.idp.github).toMatchObject({
      client_id: "id",
      client_secret: "secret",
      allowed_users: ["Alice", "bob"],
    });
    expect(config.store).toMatchObject({
      type: "redis",
      redis: { url: "redis://redis:6379/2", password: "pw" },
    });
    expect(config.registration.client_ttl).toBe(0);
    expect(config.tokens.refresh_ttl).toBe(86_400);
  });

  it.each([
    ["tokens:\n  access_ttl: soon\n", /^config: tokens\.access_ttl: not a duration/],
    [
      "tokens:\n  acess_ttl: 1h\n",
      /^config: unknown key tokens\.acess_ttl \(in .*bad-\d\.yaml\); did you mean tokens\.access_ttl\?$/,
    ],
    ["tokenz:\n  access_ttl: 1h\n", /^config: unknown key tokenz \(in .*\); did you mean tokens\?$/],
    ["frobnicate: 1\n", /^config: unknown key frobnicate \(in [^)]*\)$/],
    ["store:\n  type: postgres\n", /^config: store\.type: /],
    [
      "services:\n  register:\n    url: http://127.0.0.1:1/mcp\n",
      /^config: services\.register: this name is taken/,
    ],
    [
      "services:\n  Notes:\n    url: http://127.0.0.1:1/mcp\n",
      /^config: services\.Notes: service names are lowercase/,
    ],
    ["services:\n  notes:\n    enabled: true\n", /^config: services\.notes: needs url or command/],
    [
      "services:\n  notes:\n    url: http://127.0.0.1:1/mcp\n    tools:\n      write_note:\n        allowed_user: [a]\n",
      /^config: unknown key services\.notes\.tools\.write_note\.allowed_user .*did you mean .*allowed_users\?$/,
    ],
    [
      "services:\n  notes:\n    url: http://127.0.0.1:1/mcp\n    tools:\n      'bad name!': {}\n",
      /^config: services\.notes\.tools\.bad name!: a tool name/,
    ],
    ["public_url: not a url\n", /^config: public_url: /],
    ["- a list\n", /expected a mapping/],
    ["key: [unclosed\n", /^config file .*bad-\d\.yaml: /],
  ])("refuses %j with one line naming the key", (text, message) => {
    const path = file(`bad-${Math.floor(Math.random() * 10)}.yaml`, text);
    let error: unknown;
    try {
      loadConfig({ file: path, env: {} });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain("\n");
  });

  it('reads per-tool policy: lists and scopes per tool, "*" for the rest', () => {
    const path = file(
      "tools.yaml",
      [
        "services:",
        "  notes:",
        "    url: http://127.0.0.1:1/mcp",
        "    tools:",
        "      write_note: { allowed_users: alice, scopes: [notes:write] }",
        '      "*": { allowed_teams: [acme/dev] }',
        "",
      ].join("\n"),
    );
    const tools = loadConfig({ file: path, env: {} }).config.services.notes?.tools;
    expect(tools).toEqual({
      write_note: { allowed_users: ["alice"], scopes: ["notes:write"] },
      "*": { allowed_teams: ["acme/dev"], scopes: [] },
    });
  });

  it("reads nested service settings from the environment, dashes as underscores", () => {
    const { config } = loadConfig({
      env: {
        MCP_GATEWAY_SERVICES__SEQ_THINK__URL: "http://127.0.0.1:5/mcp",
        MCP_GATEWAY_SERVICES__SEQ_THINK__SCOPES: "a,b",
      },
    });
    expect(config.services["seq-think"]).toMatchObject({ url: "http://127.0.0.1:5/mcp", scopes: ["a", "b"] });
  });
});

describe("where a wrong key came from", () => {
  function failure(options: Parameters<typeof loadConfig>[0]): string {
    try {
      loadConfig(options);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).not.toContain("\n");
      return (err as Error).message;
    }
    throw new Error("the config was accepted");
  }

  it.each([
    [
      { MCP_GATEWAY_TOKENS__ACESS_TTL: "2h" },
      "config: unknown key tokens.acess_ttl (from MCP_GATEWAY_TOKENS__ACESS_TTL); did you mean tokens.access_ttl?",
    ],
    [{ MCP_GATEWAY_TOKEN: "x" }, "config: unknown key token (from MCP_GATEWAY_TOKEN); did you mean tokens?"],
    // One underscore where two were meant.
    [
      { MCP_GATEWAY_TOKENS_ACCESS_TTL: "2h" },
      "config: unknown key tokens_access_ttl (from MCP_GATEWAY_TOKENS_ACCESS_TTL); did you mean tokens.access_ttl?",
    ],
    [
      { MCP_GATEWAY_SERVICES__NOTES__URL: "http://127.0.0.1:1/mcp", MCP_GATEWAY_SERVICES__NOTES__SCOPE: "a" },
      "config: unknown key services.notes.scope (from MCP_GATEWAY_SERVICES__NOTES__SCOPE); did you mean services.notes.scopes?",
    ],
    [
      { MCP_GATEWAY_IDP__GITHUB__ALLOWED_USER: "alice" },
      "config: unknown key idp.github.allowed_user (from MCP_GATEWAY_IDP__GITHUB__ALLOWED_USER); did you mean idp.github.allowed_users?",
    ],
    [{ MCP_GATEWAY_WIBBLE: "1" }, "config: unknown key wibble (from MCP_GATEWAY_WIBBLE)"],
  ])("an unknown key from %j names the variable", (env, message) => {
    expect(failure({ env })).toBe(message);
  });

  it.each([
    [
      { MCP_GATEWAY_TOKENS__ACCESS_TTL: "soon" },
      /^config: tokens\.access_ttl \(from MCP_GATEWAY_TOKENS__ACCESS_TTL\): not a duration/,
    ],
    [
      { REFRESH_TOKEN_LIFETIME: "forever" },
      /^config: tokens\.refresh_ttl \(from REFRESH_TOKEN_LIFETIME\): not a duration/,
    ],
    [{ MCP_GATEWAY_PORT: "eighty" }, /^config: port \(from MCP_GATEWAY_PORT\): /],
    [{ BASE_DOMAIN: "not a domain" }, /^config: public_url \(from BASE_DOMAIN\): /],
    [{ MCP_TIME_ENABLED: "maybe" }, /^config: services\.time\.enabled \(from MCP_TIME_ENABLED\): /],
    // Redis's WAIT 0 waits for ever: every write of the gateway would end at the command timeout.
    [
      { MCP_GATEWAY_STORE__REDIS__WAIT_TIMEOUT: "0" },
      /^config: store\.redis\.wait_timeout \(from MCP_GATEWAY_STORE__REDIS__WAIT_TIMEOUT\): must be at least 1 s/,
    ],
  ])("an invalid value from %j names the variable", (env, message) => {
    expect(failure({ env })).toMatch(message);
  });

  it("warns about, and ignores, a Python gateway service switch for a service that is not here", () => {
    const { config, warnings } = loadConfig({
      env: { MCP_ECHO_STATEFUL_ENABLED: "true", MCP_FETCHS_ENABLED: "no" },
    });
    expect(config.services).toEqual({});
    expect(warnings).toEqual([
      'MCP_ECHO_STATEFUL_ENABLED: no service "echo-stateful" ships with this gateway; ignored (add services.echo-stateful with a url or command to serve one)',
    ]);
  });

  it("names the flag layer too, and nothing for a value from the file", () => {
    expect(failure({ env: {}, overrides: { port: "x" } })).toMatch(
      /^config: port \(from the command line\): /,
    );
    const path = file("value.yaml", "tokens:\n  access_ttl: soon\n");
    expect(failure({ file: path, env: {} })).toMatch(/^config: tokens\.access_ttl: not a duration/);
  });

  it("ignores the client CLI's MCP_GATEWAY_CLIENT_DIR", () => {
    const { config } = loadConfig({ env: { MCP_GATEWAY_CLIENT_DIR: "/tmp/client" } });
    expect(config).not.toHaveProperty("client_dir");
  });
});

describe("the default layer (the services in the box)", () => {
  const builtins = (dataDir: string) => ({
    services: {
      box: { command: "/bin/box", args: [dataDir], env: { A: "1" }, enabled: true },
      spare: { command: "/bin/spare", enabled: false },
    },
  });

  it("is validated after merging: enabled, policy, env and args from the layers above", () => {
    const path = file(
      "box.yaml",
      "data_dir: /srv/gw\nservices:\n  box:\n    allowed_users: [alice]\n    env: { B: '2' }\n",
    );
    const { config } = loadConfig({ file: path, env: { MCP_SPARE_ENABLED: "true" }, defaults: builtins });
    expect(config.services.box).toMatchObject({
      command: "/bin/box",
      args: ["/srv/gw"],
      env: { A: "1", B: "2" },
      allowed_users: ["alice"],
      enabled: true,
    });
    expect(config.services.spare).toMatchObject({ command: "/bin/spare", enabled: true });
    const off = loadConfig({ env: { MCP_BOX_ENABLED: "false" }, defaults: builtins }).config;
    expect(off.services.box?.enabled).toBe(false);
    const args = loadConfig({
      env: {},
      overrides: { services: { box: { args: ["x"] } } },
      defaults: builtins,
    });
    expect(args.config.services.box?.args).toEqual(["x"]);
  });

  it("gets the data directory the layers above name", () => {
    const { config } = loadConfig({ env: { MCP_GATEWAY_DATA_DIR: "/var/lib/gw" }, defaults: builtins });
    expect(config.services.box?.args).toEqual(["/var/lib/gw"]);
    expect(loadConfig({ env: {}, defaults: builtins }).config.services.box?.args).toEqual(["./data"]);
  });

  it("gives way to a service of the same name with its own url or command", () => {
    const path = file("own.yaml", "services:\n  box:\n    url: http://127.0.0.1:1/mcp\n");
    const { config } = loadConfig({ file: path, env: {}, defaults: builtins });
    expect(config.services.box).toMatchObject({ url: "http://127.0.0.1:1/mcp", args: [], env: {} });
    expect(config.services.box?.command).toBeUndefined();
  });

  it("knows the Python gateway's name for sequential-thinking", () => {
    const { config } = loadConfig({
      env: { MCP_SEQUENTIALTHINKING_ENABLED: "false" },
      defaults: { services: { "sequential-thinking": { command: "/bin/st" } } },
    });
    expect(config.services["sequential-thinking"]?.enabled).toBe(false);
    expect(config.services).not.toHaveProperty("sequentialthinking");
  });
});
