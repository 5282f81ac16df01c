/**
 * How each MCP client is pointed at a service behind the gateway: one data module that
 * `mcp-gateway config client NAME URL`, the landing page and the README's "Connect a client"
 * section all render, so the three never disagree. Each entry names where its client documents
 * the format; test/web/snippets.test.ts parses every output (JSON, TOML, the command line) and
 * checks it against that documented shape.
 *
 * Clients that speak OAuth for remote servers get the URL itself and log in on first use
 * (discovery, registration and the browser login are theirs). Claude Desktop reads only stdio
 * servers from its config file, so it gets the gateway's own relay, `mcp-gateway connect`.
 */
import { isIP } from "node:net";
import { LOOPBACK_HOSTS } from "../net/loopback.js";
import { forbiddenAddressReason } from "../net/ssrf.js";

export const CLIENT_IDS = [
  "claude-desktop",
  "claude-code",
  "cursor",
  "vscode",
  "windsurf",
  "codex",
  "gemini-cli",
  "chatgpt",
] as const;

export type ClientId = (typeof CLIENT_IDS)[number];

export function isClientId(value: string): value is ClientId {
  return (CLIENT_IDS as readonly string[]).includes(value);
}

export interface Snippet {
  client: ClientId;
  /** The client's own name, as people know it. */
  title: string;
  /** What `text` is: a file's content, a command line, or steps for a person. */
  format: "json" | "toml" | "shell" | "steps";
  /** Where it goes. Here and in `notes`, \`backticks\` mark code (Markdown's inline code). */
  where: string;
  /** The configuration (or the command, or the numbered steps). */
  text: string;
  /** What to do before or after, one sentence each. */
  notes: string[];
  /** Where the client documents this format. */
  docs: string;
}

/** The URL the README's section is generated for (`npm start`'s time service). */
export const EXAMPLE_URL = "http://localhost:8080/time/mcp";

/**
 * The key a client files the server under: the service name of `/{name}/mcp` or
 * `{name}.{domain}/mcp`, else "mcp-gateway". Limited to what every client accepts as a name
 * (Codex: `[A-Za-z0-9_-]`, a bare TOML key).
 */
export function serverNameFor(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "mcp-gateway";
  }
  const byPath = /\/([A-Za-z0-9_-]+)\/mcp\/?$/.exec(parsed.pathname)?.[1];
  const byHost = /^\/mcp\/?$/.test(parsed.pathname) ? parsed.hostname.split(".")[0] : undefined;
  const name = byPath ?? byHost;
  return name && /^[A-Za-z0-9_-]{1,64}$/.test(name) ? name : "mcp-gateway";
}

const json = (value: unknown) => JSON.stringify(value, null, 2);

/** One shell word: bare when it is plainly safe, else single-quoted (POSIX sh). */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** A TOML basic string; JSON's escapes are a subset of TOML's. */
const tomlString = (s: string) => JSON.stringify(s);

/** Whether ChatGPT (which connects from OpenAI's servers) could reach this URL at all. */
function publicHttps(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, "");
  if (parsed.protocol !== "https:" || LOOPBACK_HOSTS.has(parsed.hostname)) return false;
  return isIP(host) === 0
    ? !/(^|\.)(localhost|local|internal)$/.test(host)
    : forbiddenAddressReason(host) === null;
}

type Builder = (url: string, name: string) => Omit<Snippet, "client">;

const BUILDERS: Record<ClientId, Builder> = {
  // https://modelcontextprotocol.io/docs/develop/connect-local-servers: claude_desktop_config.json,
  // `mcpServers` -> {command, args}; Claude Desktop starts stdio servers from it.
  "claude-desktop": (url, name) => ({
    title: "Claude Desktop",
    format: "json",
    where:
      "`claude_desktop_config.json` (Settings → Developer → Edit Config; macOS: `~/Library/Application Support/Claude/`, Windows: `%APPDATA%\\Claude\\`)",
    text: json({ mcpServers: { [name]: { command: "mcp-gateway", args: ["connect", url] } } }),
    notes: [
      `Log in once in a terminal first: \`mcp-gateway login ${url}\` (\`npm install -g mcp-oauth-gateway\` puts \`mcp-gateway\` on the PATH).`,
      "Merge the entry into the file's `mcpServers` object, then restart Claude Desktop.",
    ],
    docs: "https://modelcontextprotocol.io/docs/develop/connect-local-servers",
  }),
  // https://code.claude.com/docs/en/mcp: `claude mcp add --transport http <name> <url>`, options
  // before the name; OAuth from /mcp inside a session.
  "claude-code": (url, name) => ({
    title: "Claude Code",
    format: "shell",
    where:
      "a terminal (`--scope user` before the name: every project; `--scope project`: shared in `.mcp.json`)",
    text: ["claude", "mcp", "add", "--transport", "http", name, url].map(shellWord).join(" "),
    notes: ["Then `/mcp` in Claude Code, Authenticate: the gateway's sign-in opens in your browser."],
    docs: "https://code.claude.com/docs/en/mcp",
  }),
  // https://cursor.com/docs/mcp: ~/.cursor/mcp.json (or .cursor/mcp.json in a project),
  // `mcpServers` -> {url} for a remote (Streamable HTTP) server; OAuth on connect.
  cursor: (url, name) => ({
    title: "Cursor",
    format: "json",
    where: "`~/.cursor/mcp.json` (every project) or `.cursor/mcp.json` (one project)",
    text: json({ mcpServers: { [name]: { url } } }),
    notes: ["Cursor shows the server as needing login: choose Connect and sign in at the gateway."],
    docs: "https://cursor.com/docs/mcp",
  }),
  // https://code.visualstudio.com/docs/copilot/reference/mcp-configuration: .vscode/mcp.json,
  // top-level `servers` (not mcpServers) -> {type: "http", url}.
  vscode: (url, name) => ({
    title: "VS Code (GitHub Copilot)",
    format: "json",
    where: "`.vscode/mcp.json` in the workspace (or MCP: Open User Configuration, for every workspace)",
    text: json({ servers: { [name]: { type: "http", url } } }),
    notes: ["Start the server from the file's code lens; VS Code asks to sign in with the gateway."],
    docs: "https://code.visualstudio.com/docs/copilot/reference/mcp-configuration",
  }),
  // https://docs.windsurf.com/windsurf/cascade/mcp: ~/.codeium/windsurf/mcp_config.json,
  // `mcpServers` -> {serverUrl} for a remote HTTP server.
  windsurf: (url, name) => ({
    title: "Windsurf",
    format: "json",
    where: "`~/.codeium/windsurf/mcp_config.json` (Cascade → MCP servers → View raw config)",
    text: json({ mcpServers: { [name]: { serverUrl: url } } }),
    notes: ["Press refresh in the MCP panel; Windsurf opens the gateway's sign-in."],
    docs: "https://docs.windsurf.com/windsurf/cascade/mcp",
  }),
  // https://developers.openai.com/codex/mcp: ~/.codex/config.toml, a `[mcp_servers.<name>]`
  // table with `url` for a Streamable HTTP server; `codex mcp login <name>` runs the OAuth login.
  codex: (url, name) => ({
    title: "Codex",
    format: "toml",
    where: "`~/.codex/config.toml` (or `.codex/config.toml` in a trusted project)",
    text: `[mcp_servers.${name}]\nurl = ${tomlString(url)}\n`,
    notes: [`Then log in: \`codex mcp login ${name}\``],
    docs: "https://developers.openai.com/codex/mcp",
  }),
  // https://github.com/google-gemini/gemini-cli/blob/main/docs/tools/mcp-server.md:
  // ~/.gemini/settings.json, `mcpServers` -> {httpUrl} for Streamable HTTP (`url` means SSE).
  "gemini-cli": (url, name) => ({
    title: "Gemini CLI",
    format: "json",
    where: "`~/.gemini/settings.json` (or `.gemini/settings.json` in a project)",
    text: json({ mcpServers: { [name]: { httpUrl: url } } }),
    notes: [
      `Merge into the file's \`mcpServers\` object; then \`/mcp auth ${name}\` in Gemini CLI signs in.`,
    ],
    docs: "https://github.com/google-gemini/gemini-cli/blob/main/docs/tools/mcp-server.md",
  }),
  // https://help.openai.com/en/articles/12584461 (developer mode) and
  // https://developers.openai.com/apps-sdk/deploy/connect-chatgpt: a connector is created in
  // ChatGPT's settings with the server URL and OAuth; ChatGPT reaches it from OpenAI's servers.
  chatgpt: (url, name) => ({
    title: "ChatGPT",
    format: "steps",
    where: "ChatGPT's settings, on chatgpt.com",
    text: [
      "1. Settings → Apps → Advanced settings: turn on Developer mode (in a workspace, an admin allows it under Workspace Settings → Permissions & Roles).",
      "2. Settings → Apps → Create (a new app or connector).",
      `3. Name: ${name}; MCP server URL: ${url}; Authentication: OAuth. Create.`,
      "4. ChatGPT sends you to the gateway: sign in and allow access.",
      "5. In a chat, choose + → Developer mode and switch the app on.",
    ].join("\n"),
    notes: publicHttps(url)
      ? []
      : [`ChatGPT connects from OpenAI's servers: it needs a public https URL, which \`${url}\` is not.`],
    docs: "https://help.openai.com/en/articles/12584461",
  }),
};

/** The configuration of `client` for the MCP server at `url`, filed under `name`. */
export function snippetFor(client: ClientId, url: string, name: string = serverNameFor(url)): Snippet {
  return { client, ...BUILDERS[client](url, name) };
}

export function allSnippets(url: string, name?: string): Snippet[] {
  return CLIENT_IDS.map((id) => snippetFor(id, url, name));
}

const FENCE: Record<Snippet["format"], string> = { json: "json", toml: "toml", shell: "sh", steps: "text" };

/** `where` and `notes` without their code marks, for a terminal. */
export function plainText(text: string): string {
  return text.replace(/`([^`]*)`/g, "$1");
}

/**
 * The README's "Connect a client" section (its body, after the heading), for `url`. The README
 * test compares the file with this, so edit here and run `npm run readme:snippets`.
 */
export function readmeSection(url: string = EXAMPLE_URL): string {
  const intro = [
    "Every service is at `{public_url}/{service}/mcp`. The landing page (`/`) shows these snippets",
    "for the services a signed-in person may use, and `mcp-gateway config client CLIENT URL`",
    `prints one (\`CLIENT\`: ${CLIENT_IDS.map((c) => `\`${c}\``).join(", ")}). For \`${url}\`:`,
  ].join("\n");
  const parts = allSnippets(url).map((s) => {
    const notes = s.notes.map((n) => `- ${n}\n`).join("");
    const text = `\`\`\`${FENCE[s.format]}\n${s.text.trimEnd()}\n\`\`\``;
    return `### ${s.title}\n\nWhere: ${s.where}. [The format](${s.docs}).\n\n${text}\n${notes ? `\n${notes}` : ""}`;
  });
  return `${intro}\n\n${parts.join("\n")}`;
}
