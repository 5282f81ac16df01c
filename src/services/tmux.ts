/**
 * Entry point of the native `tmux` MCP server on stdio: `node dist/services/tmux.js
 * [--socket PATH | --socket-name NAME] [--tmux PATH]` (or MCP_TMUX_SOCKET, MCP_TMUX_SOCKET_NAME,
 * MCP_TMUX_BINARY). Default socket: `tmux -L mcp-gateway`, never the user's own tmux server.
 */
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { serveBothEras } from "./stdio.js";
import { DEFAULT_SOCKET_NAME, SESSION_NAME, type TmuxSocket } from "./tmux-runner.js";
import { createTmuxServer } from "./tmux-server.js";

/** Unix socket paths are limited to 108 bytes including the NUL (sun_path on Linux). */
const MAX_SOCKET_PATH = 107;

function fail(message: string): never {
  process.stderr.write(`mcp-tmux: ${message}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    socket: { type: "string" },
    "socket-name": { type: "string" },
    tmux: { type: "string" },
  },
  strict: false,
});
const socketPath = (values.socket as string | undefined) ?? process.env.MCP_TMUX_SOCKET;
const socketName = (values["socket-name"] as string | undefined) ?? process.env.MCP_TMUX_SOCKET_NAME;

let socket: TmuxSocket;
if (socketPath) {
  const path = resolve(socketPath);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH)
    fail(
      `socket path too long for a Unix socket (${Buffer.byteLength(path)} > ${MAX_SOCKET_PATH} bytes): ${path}`,
    );
  // Only this user may reach the socket's directory: the socket gives a shell to whoever connects.
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  socket = { path };
} else {
  const name = socketName || DEFAULT_SOCKET_NAME;
  if (!SESSION_NAME.test(name)) fail(`invalid socket name: ${JSON.stringify(name)}`);
  socket = { name };
}

const binary = (values.tmux as string | undefined) ?? process.env.MCP_TMUX_BINARY ?? "tmux";
serveBothEras(() => createTmuxServer({ binary, socket }));
