/**
 * Per-tool policy on a bridged stdio server (the official "everything" server from npm) through
 * the whole gateway: real logins on the real authorization server, the SDK v2 client in legacy
 * and pinned 2026-07-28 modes, a step-up to a token with the tool's scope, and the audit lines
 * and metrics an operator reads.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalUsers } from "../../src/idp/local.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { accessTokenFor } from "../support/login.js";
import { connectWithToken, ERA_MODES, type EraMode } from "../support/mcp-clients.js";
import { modernToolCall, raw } from "../support/mcp-http.js";
import { everything } from "./helpers.js";

const ALICE = { username: "alice", password: "alice's long password" };
const BOB = { username: "bob", password: "bob's long password" };
const MODES = ERA_MODES;

describe("per-tool policy on a bridged stdio service", () => {
  let gw: RunningGateway;
  const logLines: string[] = [];
  const tokens: Record<string, string> = {};
  let resource: string;

  beforeAll(async () => {
    gw = await startFullGateway(
      {
        log_level: "info",
        services: {
          every: {
            ...everything,
            tools: {
              // The server's environment is for alice's eyes only.
              "get-env": { allowed_users: ["alice"] },
              "get-sum": { scopes: ["every:sum"] },
            },
          },
        },
      },
      { logLines },
    );
    const users = new LocalUsers(gw.store);
    await users.add(ALICE.username, ALICE.password);
    await users.add(BOB.username, BOB.password);
    resource = `${gw.url}/every/mcp`;
    tokens.alice = (await accessTokenFor(gw.url, [resource], ALICE)).accessToken;
    tokens.bob = (await accessTokenFor(gw.url, [resource], BOB)).accessToken;
  }, 60_000);
  afterAll(async () => {
    await gw?.close({ wipe: true });
  });

  const connect = (mode: EraMode, token: string) => connectWithToken(resource, mode, token, "bridged-policy");

  for (const [label, mode] of Object.entries(MODES)) {
    it(`${label}: alice lists and calls get-env, bob neither sees nor calls it`, async () => {
      const alice = await connect(mode, tokens.alice as string);
      const bob = await connect(mode, tokens.bob as string);
      try {
        expect(alice.getProtocolEra()).toBe(mode === "legacy" ? "legacy" : "modern");
        const aliceTools = (await alice.listTools()).tools.map((t) => t.name);
        const bobTools = (await bob.listTools()).tools.map((t) => t.name);
        expect(aliceTools).toContain("get-env");
        expect(bobTools).not.toContain("get-env");
        // Everything else is the same list, get-sum included (bob may step up to it).
        expect(bobTools.sort()).toEqual(aliceTools.filter((t) => t !== "get-env").sort());
        expect(bobTools).toContain("get-sum");

        const env = await alice.callTool({ name: "get-env", arguments: {} });
        expect(JSON.stringify(env.content)).toContain("PATH");
        const refused = await bob.callTool({ name: "get-env", arguments: {} }).then(
          () => undefined,
          (err: unknown) => err as { code?: number; message: string },
        );
        expect(refused?.code).toBe(-32602);
        expect(refused?.message).toContain("get-env");
        const echoed = await bob.callTool({ name: "echo", arguments: { message: "open to all" } });
        expect(JSON.stringify(echoed.content)).toContain("open to all");
      } finally {
        await alice.close();
        await bob.close();
      }
    }, 60_000);
  }

  it("step-up: get-sum is 403 insufficient_scope until the token carries every:sum, which the AS grants", async () => {
    const call = (token: string) =>
      modernToolCall(resource, { token, name: "get-sum", args: { a: 2, b: 3 } });
    const refused = await call(tokens.bob as string);
    expect(refused.status).toBe(403);
    const challenge = String(refused.headers["www-authenticate"]);
    expect(challenge).toContain('error="insufficient_scope"');
    expect(challenge).toContain('scope="every:sum"');

    const stepped = (await accessTokenFor(gw.url, [resource], BOB, "every:sum")).accessToken;
    const allowed = await call(stepped);
    expect(allowed.status).toBe(200);
    expect(allowed.text).toContain("5");
  }, 60_000);

  it("a 2026-07-28 call whose Mcp-Name and body disagree is 400 HeaderMismatch, and the child never runs it", async () => {
    const res = await modernToolCall(resource, {
      token: tokens.bob as string,
      name: "get-env",
      id: 2,
      headers: { "mcp-name": "echo" },
    });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toMatchObject({ id: 2, error: { code: -32020 } });
    expect(res.text).not.toContain("PATH");
  });

  it("each tool call is one audit line (no arguments) and counted in /metrics", async () => {
    const alice = await connect(MODES["pinned 2026-07-28"], tokens.alice as string);
    try {
      await alice.callTool({ name: "echo", arguments: { message: "audit me not" } });
    } finally {
      await alice.close();
    }
    const events = () =>
      logLines
        .map((l) => JSON.parse(l) as { audit?: Record<string, unknown> })
        .map((l) => l.audit)
        .filter((a) => a?.type === "tool.called");
    await expect
      .poll(() => events().some((e) => e?.tool === "echo" && e.user === "alice" && e.outcome === "ok"))
      .toBe(true);
    const echo = events().find((e) => e?.tool === "echo" && e.user === "alice");
    expect(echo).toMatchObject({ service: "every", status: 200, client_id: expect.any(String) });
    expect(typeof echo?.duration_ms).toBe("number");
    expect(events()).toContainEqual(
      expect.objectContaining({ tool: "get-env", user: "bob", outcome: "denied" }),
    );
    expect(events()).toContainEqual(
      expect.objectContaining({ tool: "get-sum", user: "bob", outcome: "step_up", status: 403 }),
    );
    expect(logLines.join("\n")).not.toContain("audit me not");

    const metrics = await raw(`${gw.url}/metrics`);
    expect(metrics.text).toMatch(/mcpgw_tool_calls_total\{service="every",tool="echo",outcome="ok"\} [1-9]/);
    expect(metrics.text).toMatch(
      /mcpgw_tool_calls_total\{service="every",tool="get-env",outcome="denied"\} [1-9]/,
    );
    expect(metrics.text).toMatch(
      /mcpgw_tool_call_duration_seconds_bucket\{le="\+Inf",service="every",tool="echo"\} [1-9]/,
    );
  }, 60_000);
});
