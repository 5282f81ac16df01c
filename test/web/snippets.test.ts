/**
 * `mcp-gateway config client NAME URL`, run as the built CLI, for every client: each output
 * parsed as its client reads it (JSON, TOML, a shell command line) and held to the shape that
 * client documents (cited in src/web/snippets.ts). The README's "Connect a client" section is
 * what the same module generates, so it cannot drift from the CLI or the landing page.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse as parseShell } from "shell-quote";
import { parse as parseToml } from "smol-toml";
import { describe, expect, it } from "vitest";
import {
  CLIENT_IDS,
  type ClientId,
  EXAMPLE_URL,
  readmeSection,
  serverNameFor,
  snippetFor,
} from "../../src/web/snippets.js";
import { BIN, BUILT } from "../client/cli-process.js";

const SERVICE_URL = "https://mcp.example.com/time/mcp";

function cli(...args: string[]) {
  const run = spawnSync(process.execPath, [BIN, "config", "client", ...args], {
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/nonexistent" },
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** What each client's documentation says its entry for a remote (or relayed) server looks like. */
const DOCUMENTED: Record<Exclude<ClientId, "claude-code" | "chatgpt" | "codex">, (v: unknown) => void> = {
  "claude-desktop": (v) =>
    expect(v).toEqual({ mcpServers: { time: { command: "mcp-gateway", args: ["connect", SERVICE_URL] } } }),
  cursor: (v) => expect(v).toEqual({ mcpServers: { time: { url: SERVICE_URL } } }),
  // VS Code's top-level key is `servers`, and an HTTP server says so in `type`.
  vscode: (v) => expect(v).toEqual({ servers: { time: { type: "http", url: SERVICE_URL } } }),
  // Windsurf names the remote URL `serverUrl`.
  windsurf: (v) => expect(v).toEqual({ mcpServers: { time: { serverUrl: SERVICE_URL } } }),
  // Gemini CLI: `httpUrl` is Streamable HTTP (its `url` would mean SSE).
  "gemini-cli": (v) => expect(v).toEqual({ mcpServers: { time: { httpUrl: SERVICE_URL } } }),
};

describe.skipIf(!BUILT && process.env.CI !== "true")("mcp-gateway config client", () => {
  for (const [client, check] of Object.entries(DOCUMENTED)) {
    it(`prints ${client}'s documented JSON, and where it goes on stderr`, () => {
      const run = cli(client, SERVICE_URL);
      expect(run.status, run.stderr).toBe(0);
      check(JSON.parse(run.stdout));
      expect(run.stderr).toContain(snippetFor(client as ClientId, SERVICE_URL).docs);
    });
  }

  it("prints a Codex [mcp_servers.NAME] table with the url, and the login command", () => {
    const run = cli("codex", SERVICE_URL);
    expect(run.status, run.stderr).toBe(0);
    expect(parseToml(run.stdout)).toEqual({ mcp_servers: { time: { url: SERVICE_URL } } });
    expect(run.stderr).toContain("codex mcp login time");
  });

  it("prints a claude mcp add command line with the http transport before the name", () => {
    const run = cli("claude-code", SERVICE_URL);
    expect(run.status, run.stderr).toBe(0);
    expect(parseShell(run.stdout.trim())).toEqual([
      "claude",
      "mcp",
      "add",
      "--transport",
      "http",
      "time",
      SERVICE_URL,
    ]);
  });

  it("quotes a URL the shell would otherwise split, and the command still parses to the same words", () => {
    const odd = "https://mcp.example.com/a b/mcp?x=1&y='2'";
    const run = cli("claude-code", odd, "--name", "odd");
    expect(run.status, run.stderr).toBe(0);
    expect(parseShell(run.stdout.trim())).toEqual([
      "claude",
      "mcp",
      "add",
      "--transport",
      "http",
      "odd",
      odd,
    ]);
  });

  it("prints the ChatGPT connector steps, and says when the URL is not one ChatGPT can reach", () => {
    const run = cli("chatgpt", SERVICE_URL);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/Developer mode/);
    expect(run.stdout).toContain(`MCP server URL: ${SERVICE_URL}`);
    expect(run.stdout).toMatch(/Authentication: OAuth/);
    expect(run.stderr).not.toMatch(/public https/);
    for (const local of [
      "http://localhost:8080/time/mcp",
      "https://127.0.0.1/time/mcp",
      "https://10.1.2.3/time/mcp",
    ]) {
      expect(cli("chatgpt", local).stderr).toMatch(/needs a public https URL/);
    }
  });

  it("files the server under --name when given, and under the host's label with host routing", () => {
    expect(JSON.parse(cli("cursor", SERVICE_URL, "--name", "clock").stdout)).toEqual({
      mcpServers: { clock: { url: SERVICE_URL } },
    });
    const host = "https://time.mcp.example.com/mcp";
    expect(JSON.parse(cli("cursor", host).stdout)).toEqual({ mcpServers: { time: { url: host } } });
  });

  it("refuses an unknown client, a URL that is not http(s) and a name clients would not accept", () => {
    const unknown = cli("emacs", SERVICE_URL);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain(`one of: ${CLIENT_IDS.join(", ")}`);
    expect(unknown.stdout).toBe("");
    const notUrl = cli("cursor", "time");
    expect(notUrl.status).toBe(2);
    expect(notUrl.stderr).toMatch(/is not an http\(s\) URL/);
    expect(cli("cursor", SERVICE_URL, "--name", "a b").status).toBe(2);
  });
});

describe("the snippets module", () => {
  it("names the server after the service", () => {
    expect(serverNameFor("http://localhost:8080/sequential-thinking/mcp")).toBe("sequential-thinking");
    expect(serverNameFor("https://notes.example.com/mcp")).toBe("notes");
    expect(serverNameFor("https://example.com/")).toBe("mcp-gateway");
  });

  it("is what the README's Connect a client section says", () => {
    const readme = readFileSync(resolve("README.md"), "utf8");
    const start = readme.indexOf("\n## Connect a client\n");
    expect(start, "README.md has a '## Connect a client' section").toBeGreaterThan(0);
    const body = readme.slice(start + "\n## Connect a client\n".length);
    const end = body.indexOf("\n## ");
    const section = (end < 0 ? body : body.slice(0, end)).trim();
    // Out of date? `npm run readme:snippets` rewrites the section from src/web/snippets.ts.
    expect(section).toBe(readmeSection(EXAMPLE_URL).trim());
  });
});
