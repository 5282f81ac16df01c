/**
 * URI schemes as OAuth redirect targets (RFC 8252 §7.1): those never allowed, and the default
 * list of private-use schemes of common MCP clients. Shared by the config schema (which refuses
 * a forbidden one in `registration.allowed_schemes`) and the authorization server's policy.
 */

/**
 * Schemes no client may redirect to: they execute or read content in the browser, or are not
 * redirect targets at all. `allowed_schemes` cannot name them (the config refuses it too).
 */
export const FORBIDDEN_SCHEMES: ReadonlySet<string> = new Set([
  "javascript",
  "data",
  "vbscript",
  "file",
  "about",
  "blob",
  "filesystem",
  "view-source",
  "ftp",
  "ws",
  "wss",
  "chrome",
  "chrome-extension",
  "moz-extension",
  "resource",
  "jar",
  "mailto",
  "tel",
  "sms",
]);

/**
 * The private-use schemes of the common MCP clients that are not reverse-DNS names:
 * Cursor (`cursor://anysphere.cursor-mcp/oauth/callback`), VS Code and its forks.
 */
export const DEFAULT_ALLOWED_SCHEMES = ["cursor", "vscode", "vscode-insiders", "vscodium", "windsurf"];
