// The client the conformance suite runs (`conformance client --command "node THIS"`, the server URL
// appended): `mcp-gateway login URL` with a browser that approves at once, then a stdio MCP client
// through `mcp-gateway connect URL` that lists the tools and calls the first one. Settings come
// from the suite: MCP_CONFORMANCE_CONTEXT (client_id / client_secret for pre-registration).
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const here = dirname(fileURLToPath(import.meta.url));
const bin = resolve(here, "../../../bin/mcp-gateway.js");
const url = process.argv[2];
const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT || "{}");
const root = mkdtempSync(join(tmpdir(), "mcpgw-conformance-"));
const env = {
  ...process.env,
  HOME: root,
  MCPGW_CLIENT_DIR: join(root, "creds"),
  BROWSER: `${process.execPath} ${join(here, "approve-browser.mjs")}`,
};

function run(args) {
  return new Promise((done) => {
    const child = spawn(process.execPath, [bin, ...args], { env, stdio: ["ignore", "inherit", "inherit"] });
    child.once("close", (code) => done(code));
  });
}

const login = ["login", url, "--timeout", "20s"];
if (context.client_id) {
  login.push("--client-id", context.client_id);
  if (context.client_secret) {
    const file = join(root, "secret");
    writeFileSync(file, context.client_secret, { mode: 0o600 });
    login.push("--client-secret-file", file);
  }
}
if ((await run(login)) !== 0) process.exit(1);

const client = new Client({ name: "mcp-gateway-conformance", version: "1.0.0" }, { capabilities: {} });
const transport = new StdioClientTransport({
  command: process.execPath,
  args: [bin, "connect", url, "--login-timeout", "20s"],
  env,
  stderr: "inherit",
});
try {
  await client.connect(transport);
  const { tools } = await client.listTools();
  if (tools[0]) await client.callTool({ name: tools[0].name, arguments: {} });
  await client.close();
} catch (err) {
  process.stderr.write(`client-under-test: ${err.message}\n`);
  await client.close().catch(() => undefined);
  process.exit(1);
}
