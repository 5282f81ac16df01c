/** Config layering (file < legacy env < MCP_GATEWAY_*), durations, and one-line errors. */
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
    ["tokens:\n  acess_ttl: 1h\n", /^config: tokens: unknown key acess_ttl/],
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
