/**
 * The native tmux server through the stdio bridge with the MCP SDK client, driving the real tmux
 * binary on a socket of the test's own: a shell session is created, typed into, read, listed and
 * killed; bad names, missing sessions and a missing tmux binary are clear tool errors.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client as ClientV2, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBridge, startBridge } from "../../src/bridge/index.js";
import { configSchema, type ServiceConfig } from "../../src/config/schema.js";
import { builtinServices } from "../../src/services/catalog.js";
import { bridgeOptions } from "../../src/upstreams.js";
import { connectClient } from "../bridge/helpers.js";
import { checkBinary } from "../support/binaries.js";

const TMUX = "/usr/bin/tmux";
const tmuxCheck = checkBinary(TMUX);

function text(result: unknown): string {
  return (result as { content: { type: string; text?: string }[] }).content
    .map((c) => c.text ?? "")
    .join("\n");
}

async function bridgeFor(svc: ServiceConfig, env: Record<string, string> = {}): Promise<RunningBridge> {
  const options = bridgeOptions(svc);
  return startBridge({ ...options, env: { ...options.env, ...env } });
}

/** Poll the pane until `pattern` shows up (the shell needs a moment to run what was typed). */
async function captureUntil(client: Client, session: string, pattern: RegExp): Promise<string> {
  let last = "";
  for (let i = 0; i < 50; i++) {
    const result = await client.callTool({ name: "capture_pane", arguments: { session, lines: 50 } });
    expect(result.isError).toBeFalsy();
    last = text(result);
    if (pattern.test(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`pane of ${session} never showed ${pattern}; last capture:\n${last}`);
}

describe.skipIf(!tmuxCheck.available)("tmux service through the bridge", () => {
  // A short path: Unix socket paths are limited to 108 bytes.
  const dataDir = mkdtempSync(join(tmpdir(), "mcpgw-tmux-"));
  const socket = join(dataDir, "tmux", "tmux.sock");
  let svc: ServiceConfig;
  let bridge: RunningBridge;
  let client: Client;

  beforeAll(async () => {
    svc = configSchema.parse({ services: builtinServices(dataDir) }).services.tmux as ServiceConfig;
    bridge = await bridgeFor(svc);
    client = await connectClient(bridge.url);
  });

  afterAll(async () => {
    await client?.close();
    await bridge?.close();
    // The tmux server outlives its MCP clients by design; this test's one goes now.
    try {
      execFileSync(TMUX, ["-S", socket, "kill-server"], { stdio: "ignore" });
    } catch {
      // Already gone: the last session was killed.
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("is in the catalog, off by default, on a socket under the data directory", () => {
    expect(svc.enabled).toBe(false);
    expect(svc.command).toBe(process.execPath);
    expect(svc.args).toContain(socket);
  });

  it("lists the five tools", async () => {
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    expect(names).toEqual(["capture_pane", "create_session", "kill_session", "list_sessions", "send_keys"]);
  });

  it("lists no sessions before the tmux server exists", async () => {
    const result = await client.callTool({ name: "list_sessions", arguments: {} });
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({ sessions: [] });
  });

  it("creates a shell session, types into it, reads it back, lists and kills it", async () => {
    const created = await client.callTool({
      name: "create_session",
      arguments: { name: "work-1", command: "sh" },
    });
    expect(created.isError).toBeFalsy();

    const sent = await client.callTool({
      name: "send_keys",
      arguments: { session: "work-1", keys: "echo hello-from-tmux $((6 * 7))" },
    });
    expect(sent.isError).toBeFalsy();
    // The shell's output, not only the echo of what was typed: the arithmetic is done.
    const pane = await captureUntil(client, "work-1", /hello-from-tmux 42$/m);
    expect(pane).toContain("echo hello-from-tmux $((6 * 7))");

    // Keys are literal: a tmux key name is typed as text, not pressed.
    await client.callTool({
      name: "send_keys",
      arguments: { session: "work-1", keys: "echo C-c", enter: true },
    });
    await captureUntil(client, "work-1", /^C-c$/m);

    const listed = await client.callTool({ name: "list_sessions", arguments: {} });
    const sessions = (
      listed.structuredContent as { sessions: { name: string; windows: number; created: string }[] }
    ).sessions;
    expect(sessions.map((s) => s.name)).toEqual(["work-1"]);
    expect(sessions[0]?.windows).toBe(1);
    expect(Date.now() - Date.parse(sessions[0]?.created ?? "")).toBeLessThan(60_000);

    // It runs on the dedicated socket, as tmux itself reports.
    expect(
      execFileSync(TMUX, ["-S", socket, "list-sessions", "-F", "#{session_name}"], { encoding: "utf8" }),
    ).toBe("work-1\n");

    const duplicate = await client.callTool({ name: "create_session", arguments: { name: "work-1" } });
    expect(duplicate.isError).toBe(true);
    expect(text(duplicate)).toContain('a tmux session named "work-1" already exists');

    const killed = await client.callTool({ name: "kill_session", arguments: { session: "work-1" } });
    expect(killed.isError).toBeFalsy();
    const after = await client.callTool({ name: "list_sessions", arguments: {} });
    expect(after.structuredContent).toEqual({ sessions: [] });
  });

  it("capture_pane returns at most the lines asked for", async () => {
    await client.callTool({ name: "create_session", arguments: { name: "lines", command: "sh" } });
    await client.callTool({ name: "send_keys", arguments: { session: "lines", keys: "seq 1 300" } });
    await captureUntil(client, "lines", /^300$/m);
    const result = await client.callTool({ name: "capture_pane", arguments: { session: "lines", lines: 5 } });
    const lines = text(result).split("\n");
    expect(lines).toHaveLength(5);
    // The bottom of the pane: the end of the output (and the prompt after it, once it is drawn).
    expect(lines).toContain("300");
    expect(lines[0]).toMatch(/^29[67]$/);
    await client.callTool({ name: "kill_session", arguments: { session: "lines" } });
  });

  it("refuses names outside the strict pattern, before tmux sees them", async () => {
    for (const name of ["bad name", "a;rm -rf /", "x:0", "=exact", "dot.ted", "", "-t", "a".repeat(65)]) {
      const result = await client.callTool({ name: "create_session", arguments: { name } });
      expect(result.isError, name).toBe(true);
      expect(text(result)).toContain("session names are 1-64 letters");
    }
    for (const tool of ["send_keys", "capture_pane", "kill_session"]) {
      const result = await client.callTool({ name: tool, arguments: { session: "../x", keys: "ls" } });
      expect(result.isError, tool).toBe(true);
      expect(text(result)).toContain("session names are 1-64 letters");
    }
    const listed = await client.callTool({ name: "list_sessions", arguments: {} });
    expect(listed.structuredContent).toEqual({ sessions: [] });
  });

  it("says clearly when a session does not exist, also as a prefix of one that does", async () => {
    await client.callTool({ name: "create_session", arguments: { name: "prefix-long" } });
    for (const tool of ["send_keys", "capture_pane", "kill_session"]) {
      const result = await client.callTool({ name: tool, arguments: { session: "prefix", keys: "ls" } });
      expect(result.isError, tool).toBe(true);
      expect(text(result)).toContain('no tmux session named "prefix"');
    }
    await client.callTool({ name: "kill_session", arguments: { session: "prefix-long" } });
    // With no tmux server running at all, the same answer.
    const none = await client.callTool({ name: "capture_pane", arguments: { session: "prefix-long" } });
    expect(text(none)).toContain('no tmux session named "prefix-long"');
  });

  it("says no such session while the tmux server, with no sessions left, has not exited yet", async () => {
    // Killing the last session makes tmux exit, but not at once: a command that reaches it in
    // between meets a server with no sessions, which answers "no current target". Holding the
    // server open (exit-empty off) puts every call in that window, however fast the machine.
    await client.callTool({ name: "create_session", arguments: { name: "held" } });
    execFileSync(TMUX, ["-S", socket, "set-option", "-g", "exit-empty", "off"]);
    try {
      await client.callTool({ name: "kill_session", arguments: { session: "held" } });
      for (const tool of ["send_keys", "capture_pane", "kill_session"]) {
        const result = await client.callTool({ name: tool, arguments: { session: "held", keys: "ls" } });
        expect(result.isError, tool).toBe(true);
        expect(text(result), tool).toContain('no tmux session named "held"');
      }
      const listed = await client.callTool({ name: "list_sessions", arguments: {} });
      expect(listed.structuredContent).toEqual({ sessions: [] });
    } finally {
      execFileSync(TMUX, ["-S", socket, "kill-server"]);
    }
  });

  it("creates a session right after the last one was killed, while the old tmux server exits", async () => {
    // A new-session that connects as the emptied server exits is cut off ("server exited
    // unexpectedly"); nothing was created, and the next try starts a fresh server. Many rounds,
    // so that the window (widest on a busy machine) is met now and then.
    for (let round = 0; round < 10; round++) {
      const created = await client.callTool({ name: "create_session", arguments: { name: "brief" } });
      expect(text(created), `round ${round}`).toBe('created tmux session "brief"');
      await client.callTool({ name: "kill_session", arguments: { session: "brief" } });
      const again = await client.callTool({ name: "capture_pane", arguments: { session: "brief" } });
      expect(text(again), `round ${round}`).toContain('no tmux session named "brief"');
    }
  });

  it("serves a 2026-07-28 client (stateless) and a 2025 session the same tmux sessions", async () => {
    const modern = new ClientV2(
      { name: "tmux-2026", version: "1.0.0" },
      { versionNegotiation: { mode: { pin: "2026-07-28" } } },
    );
    await modern.connect(new StreamableHTTPClientTransport(new URL(bridge.url)));
    try {
      expect(modern.getProtocolEra()).toBe("modern");
      const created = await modern.callTool({
        name: "create_session",
        arguments: { name: "eras", command: "sh" },
      });
      expect(text(created)).toBe('created tmux session "eras"');
      await modern.callTool({
        name: "send_keys",
        arguments: { session: "eras", keys: "echo both-$((40 + 2))" },
      });
      // The 2025 session reads what the stateless client typed.
      await captureUntil(client, "eras", /^both-42$/m);
      const listed = await modern.callTool({ name: "list_sessions", arguments: {} });
      expect(
        (listed.structuredContent as { sessions: { name: string }[] }).sessions.map((x) => x.name),
      ).toEqual(["eras"]);
      await client.callTool({ name: "kill_session", arguments: { session: "eras" } });
      const gone = await modern.callTool({ name: "capture_pane", arguments: { session: "eras" } });
      expect(text(gone)).toContain('no tmux session named "eras"');
    } finally {
      await modern.close();
    }
  }, 60_000);

  it("says clearly when the tmux binary is missing", async () => {
    const missing = await bridgeFor(svc, { MCP_TMUX_BINARY: join(dataDir, "no-such-tmux") });
    const c = await connectClient(missing.url);
    try {
      for (const [name, args] of [
        ["list_sessions", {}],
        ["create_session", { name: "x" }],
      ] as const) {
        const result = await c.callTool({ name, arguments: args });
        expect(result.isError, name).toBe(true);
        expect(text(result)).toContain("tmux is not installed");
      }
    } finally {
      await c.close();
      await missing.close();
    }
  });
});
