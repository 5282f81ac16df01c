/**
 * Bridged stdio services through the whole gateway, as an attacker on the same machine and as a
 * second user would try them: the bridge is reachable only through the gateway (no TCP port,
 * a unix socket 0600 in a 0700 directory), and a session answers only the user and client that
 * created it — in both session modes.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalUsers } from "../../src/idp/local.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { accessTokenFor } from "../support/login.js";
import { everything, initializeRequest } from "./helpers.js";

const ALICE = { username: "alice", password: "alice's long password" };
const BOB = { username: "bob", password: "bob's long password" };
const MODES = { "per-session": "ps", shared: "sh" } as const;

/** TCP ports this process listens on, read from /proc (what any local user can scan for). */
function listeningTcpPorts(): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const link = readlinkSync(`/proc/self/fd/${fd}`);
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m?.[1]) inodes.add(m[1]);
    } catch {
      // Closed while we looked.
    }
  }
  const ports: number[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT; state 0A is LISTEN; field 9 is the inode.
      if (f[3] === "0A" && f[9] && inodes.has(f[9]))
        ports.push(Number.parseInt(f[1]?.split(":")[1] ?? "", 16));
    }
  }
  return ports;
}

async function mcp(
  url: string,
  token: string,
  body: unknown,
  sid?: string,
  method = "POST",
): Promise<Response> {
  return fetch(url, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2025-06-18",
      ...(sid ? { "mcp-session-id": sid } : {}),
    },
    body: method === "POST" ? JSON.stringify(body) : undefined,
  });
}

describe("bridged services through the gateway only", () => {
  let gw: RunningGateway;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    const services: Record<string, unknown> = {};
    for (const [mode, short] of Object.entries(MODES)) {
      services[`every-${short}`] = { ...everything, session_mode: mode };
    }
    gw = await startFullGateway({ services });
    const users = new LocalUsers(gw.store);
    await users.add(ALICE.username, ALICE.password);
    await users.add(BOB.username, BOB.password);
    const resources = Object.keys(services).map((s) => `${gw.url}/${s}/mcp`);
    // Two logins for alice: two registered clients of the same user.
    tokens.alice = (await accessTokenFor(gw.url, resources, ALICE)).accessToken;
    tokens.aliceOtherClient = (await accessTokenFor(gw.url, resources, ALICE)).accessToken;
    tokens.bob = (await accessTokenFor(gw.url, resources, BOB)).accessToken;
  });
  afterAll(async () => {
    await gw?.close({ wipe: true });
  });

  it("no bridge listens on TCP: a plain HTTP client on this machine gets no MCP answer", async () => {
    const ports = listeningTcpPorts().filter((p) => p !== gw.port);
    const answered: string[] = [];
    for (const port of ports) {
      const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify(initializeRequest(1)),
      }).catch(() => undefined);
      if (res?.status === 200) answered.push(`127.0.0.1:${port} -> 200 initialize`);
      await res?.body?.cancel();
    }
    expect(answered).toEqual([]);
  });

  it("each bridge's socket is 0600, in a 0700 directory of its own, gone after close", async () => {
    const paths = Object.keys(MODES).map((_, i) => {
      const name = `every-${Object.values(MODES)[i]}`;
      const target = gw.upstreams.get(name) as unknown as { socketPath?: string };
      return target?.socketPath;
    });
    for (const path of paths) {
      expect(path, "the bridge listens on a unix socket").toBeTypeOf("string");
      const socket = statSync(path as string);
      expect(socket.isSocket()).toBe(true);
      expect(socket.mode & 0o777).toBe(0o600);
      expect(statSync(dirname(path as string)).mode & 0o777).toBe(0o700);
    }
    // Cleanup on close is checked on a gateway of its own, not the shared one.
    const other = await startFullGateway({ services: { every: everything } });
    const path = (other.upstreams.get("every") as unknown as { socketPath: string }).socketPath;
    expect(existsSync(path)).toBe(true);
    await other.close({ wipe: true });
    expect(existsSync(path)).toBe(false);
    expect(existsSync(dirname(path))).toBe(false);
  });

  for (const [mode, short] of Object.entries(MODES)) {
    it(`${mode}: a session id with another user's or another client's token is 404, and the owner's session is untouched`, async () => {
      const url = `${gw.url}/every-${short}/mcp`;
      const init = await mcp(url, tokens.alice as string, initializeRequest(1));
      expect(init.status).toBe(200);
      await init.text();
      const sid = init.headers.get("mcp-session-id") as string;
      expect(sid).toBeTruthy();
      const initialized = await mcp(
        url,
        tokens.alice as string,
        {
          jsonrpc: "2.0",
          method: "notifications/initialized",
        },
        sid,
      );
      expect(initialized.status).toBe(202);

      const call = (id: number) => ({
        jsonrpc: "2.0",
        id,
        method: "tools/call",
        params: { name: "echo", arguments: { message: `call ${id}` } },
      });
      for (const intruder of [tokens.bob, tokens.aliceOtherClient] as string[]) {
        const post = await mcp(url, intruder, call(2), sid);
        expect(post.status).toBe(404);
        expect(await post.json()).toMatchObject({ error: { code: -32001 } });
        const stream = await fetch(url, {
          headers: {
            authorization: `Bearer ${intruder}`,
            accept: "text/event-stream",
            "mcp-session-id": sid,
          },
        });
        expect(stream.status).toBe(404);
        await stream.body?.cancel();
        const del = await mcp(url, intruder, undefined, sid, "DELETE");
        expect(del.status).toBe(404);
        await del.body?.cancel();
      }

      // The owner's session survived every attempt.
      const mine = await mcp(url, tokens.alice as string, call(3), sid);
      expect(mine.status).toBe(200);
      expect(await mine.text()).toContain("call 3");
      const bye = await mcp(url, tokens.alice as string, undefined, sid, "DELETE");
      expect(bye.status).toBe(200);
    });
  }
});
