/**
 * Per-tool policy and the 2026-07-28 header rules, through the real gateway to a real upstream
 * of both eras (SDK v2 McpServer), with the SDK v2 client in legacy (2025 sessions) and pinned
 * 2026-07-28 (stateless) modes, and raw requests where exact statuses and headers matter.
 */
import type { Client } from "@modelcontextprotocol/client";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditEvent } from "../../src/ops/audit.js";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { connectWithToken, ERA_MODES, type EraMode } from "../support/mcp-clients.js";
import {
  MCP_HEADERS,
  MODERN,
  MODERN_META,
  modernToolCall,
  postInitialize,
  raw,
} from "../support/mcp-http.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { type BothErasUpstream, startBothErasUpstream } from "../support/upstream-v2.js";

const MODES = ERA_MODES;
/** The 2026-07-28 envelope of a raw request. */
const META = MODERN_META;

describe("per-tool policy through the gateway", () => {
  let upstream: BothErasUpstream;
  let paged: BothErasUpstream;
  let sse: TestUpstream;
  let gw: TestGateway;
  const audit: AuditEvent[] = [];
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    upstream = await startBothErasUpstream();
    paged = await startBothErasUpstream("/mcp", { toolsPageSize: 2 });
    sse = await startUpstream();
    gw = await startGateway(
      {
        services: {
          notes: {
            url: upstream.url,
            scopes: ["notes"],
            tools: {
              write_note: { allowed_users: ["alice"] },
              admin_reset: { allowed_users: ["alice", "bob"], scopes: ["notes:admin"] },
              "*": { allowed_users: ["alice", "bob"] },
            },
          },
          // The same tools, listed two to a page.
          paged: {
            url: paged.url,
            tools: { write_note: { allowed_users: ["alice"] }, "*": { allowed_users: ["alice", "bob"] } },
          },
          // A 2025 server (SDK v1 sessions) that answers every request as an SSE stream.
          sse: { url: sse.url, tools: { slow_stream: { allowed_users: ["alice"] } } },
          // The same upstream with no per-tool policy: the plain path.
          plain: { url: upstream.url },
        },
      },
      { audit: { emit: (e) => audit.push(e) } },
    );
    tokens.alice = await gw.token("notes", {
      sub: "u-alice",
      preferred_username: "alice",
      client_id: "client-a",
      scope: "notes",
    });
    tokens.bob = await gw.token("notes", {
      sub: "u-bob",
      preferred_username: "bob",
      client_id: "client-b",
      scope: "notes",
    });
    tokens.carol = await gw.token("notes", { sub: "u-carol", preferred_username: "carol", scope: "notes" });
    tokens.aliceAdmin = await gw.token("notes", {
      sub: "u-alice",
      preferred_username: "alice",
      client_id: "client-a",
      scope: "notes notes:admin",
    });
    tokens.plain = await gw.token("plain", { sub: "u-alice", preferred_username: "alice" });
    tokens.pagedAlice = await gw.token("paged", { sub: "u-alice", preferred_username: "alice" });
    tokens.pagedBob = await gw.token("paged", { sub: "u-bob", preferred_username: "bob" });
    tokens.sseAlice = await gw.token("sse", { sub: "u-alice", preferred_username: "alice" });
    tokens.sseBob = await gw.token("sse", { sub: "u-bob", preferred_username: "bob" });
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
    await paged?.close();
    await sse?.close();
  });

  const connect = (mode: EraMode, token: string, service = "notes") =>
    connectWithToken(`${gw.url}/${service}/mcp`, mode, token, "tool-policy-test");

  const callsOf = (tool: string) =>
    upstream.posts.filter((p) => p.method === "tools/call" && p.tool === tool).length;

  for (const [label, mode] of Object.entries(MODES)) {
    it(`${label}: each user lists only the tools they may call, and calls only those`, async () => {
      const alice = await connect(mode, tokens.alice as string);
      const bob = await connect(mode, tokens.bob as string);
      try {
        expect(alice.getProtocolEra()).toBe(mode === "legacy" ? "legacy" : "modern");
        const names = async (c: Client) => (await c.listTools()).tools.map((t) => t.name).sort();
        expect(await names(alice)).toEqual(["admin_reset", "fail_note", "read_note", "whoami", "write_note"]);
        // admin_reset is listed for bob too: he may call it once his token has the scope.
        expect(await names(bob)).toEqual(["admin_reset", "fail_note", "read_note", "whoami"]);

        const written = await alice.callTool({ name: "write_note", arguments: { text: "hi" } });
        expect(written.content).toEqual([{ type: "text", text: "written: hi" }]);
        expect((await bob.callTool({ name: "read_note", arguments: {} })).content).toEqual([
          { type: "text", text: "note: hello" },
        ]);

        const before = callsOf("write_note");
        const refused = await bob.callTool({ name: "write_note", arguments: { text: "sneaky" } }).then(
          () => undefined,
          (err: unknown) => err as { code?: number; message: string },
        );
        expect(refused?.code).toBe(-32602);
        expect(refused?.message).toContain("write_note");
        // Never reached the upstream.
        expect(callsOf("write_note")).toBe(before);
      } finally {
        await alice.close();
        await bob.close();
      }
    }, 60_000);
  }

  for (const [label, mode] of Object.entries(MODES)) {
    it(`${label}: a paginated tools/list is filtered page by page, cursors kept`, async () => {
      // The SDK client follows nextCursor itself; the upstream sees every page asked for.
      const all = async (token: string) => {
        const client = await connect(mode, token, "paged");
        try {
          const before = paged.posts.filter((p) => p.method === "tools/list").length;
          const names = (await client.listTools()).tools.map((t) => t.name);
          const pages = paged.posts.filter((p) => p.method === "tools/list").length - before;
          return { names, pages };
        } finally {
          await client.close();
        }
      };
      expect(await all(tokens.pagedAlice as string)).toEqual({
        names: ["whoami", "read_note", "write_note", "admin_reset", "fail_note"],
        pages: 3,
      });
      // The second page loses write_note and keeps its cursor to the third.
      expect(await all(tokens.pagedBob as string)).toEqual({
        names: ["whoami", "read_note", "admin_reset", "fail_note"],
        pages: 3,
      });
    });
  }

  it("SSE answers: tools/list events are filtered, a streamed tools/call is audited when its response event arrives", async () => {
    const alice = await connect(MODES.legacy, tokens.sseAlice as string, "sse");
    const bob = await connect(MODES.legacy, tokens.sseBob as string, "sse");
    try {
      // Only slow_stream has a rule (alice's); the upstream's other tools have none and stay listed.
      expect((await alice.listTools()).tools.map((t) => t.name).sort()).toEqual([
        "gated_stream",
        "slow_stream",
        "whoami",
      ]);
      expect((await bob.listTools()).tools.map((t) => t.name).sort()).toEqual(["gated_stream", "whoami"]);
      audit.length = 0;
      const done = await alice.callTool({ name: "slow_stream", arguments: { count: 3, delayMs: 10 } });
      expect(done.content).toEqual([{ type: "text", text: "done" }]);
      await expect.poll(() => audit.filter((e) => e.type === "tool.called").length).toBe(1);
      expect(audit[0]).toMatchObject({ service: "sse", tool: "slow_stream", outcome: "ok", user: "alice" });
      await expect(
        bob.callTool({ name: "slow_stream", arguments: { count: 1, delayMs: 0 } }),
      ).rejects.toThrow(/slow_stream/);
    } finally {
      await alice.close();
      await bob.close();
    }
    // That upstream answers requests with event streams, not JSON.
    const direct = await postInitialize(sse.url);
    expect(String(direct.headers["content-type"])).toContain("text/event-stream");
  });

  it("someone the service admits but no tool rule names lists nothing and calls nothing", async () => {
    const carol = await connect(MODES.legacy, tokens.carol as string);
    try {
      expect((await carol.listTools()).tools).toEqual([]);
      await expect(carol.callTool({ name: "read_note", arguments: {} })).rejects.toThrow(/read_note/);
    } finally {
      await carol.close();
    }
  });

  it("a tool that needs a scope more: 403 insufficient_scope naming it (step-up), then allowed with it", async () => {
    const before = callsOf("admin_reset");
    const call = (token: string) =>
      modernToolCall(`${gw.url}/notes/mcp`, { token, name: "admin_reset", id: 7 });
    const refused = await call(tokens.alice as string);
    expect(refused.status).toBe(403);
    const challenge = String(refused.headers["www-authenticate"]);
    expect(challenge).toContain('error="insufficient_scope"');
    expect(challenge).toContain('scope="notes notes:admin"');
    expect(challenge).toContain(
      `resource_metadata="${gw.url}/.well-known/oauth-protected-resource/notes/mcp"`,
    );
    expect(JSON.parse(refused.text)).toMatchObject({
      id: 7,
      error: { message: expect.stringContaining("admin_reset") },
    });
    expect(callsOf("admin_reset")).toBe(before);

    const allowed = await call(tokens.aliceAdmin as string);
    expect(allowed.status).toBe(200);
    expect(allowed.text).toContain("reset");
    expect(callsOf("admin_reset")).toBe(before + 1);

    // The metadata lists the tool's scope, so a client knows it may ask for it.
    const prm = await raw(`${gw.url}/.well-known/oauth-protected-resource/notes/mcp`);
    expect(JSON.parse(prm.text).scopes_supported).toEqual(["notes", "notes:admin"]);
  });

  it("the SDK v2 client sees the step-up as a 403 naming the scope", async () => {
    const alice = await connect(MODES["pinned 2026-07-28"], tokens.alice as string);
    try {
      const err = await alice.callTool({ name: "admin_reset", arguments: {} }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(String(err)).toMatch(/403|insufficient_scope|notes:admin/);
    } finally {
      await alice.close();
    }
  });

  for (const service of ["notes", "plain"]) {
    it(`${service}: a call whose Mcp-Name header and body disagree is 400 HeaderMismatch (-32020), never forwarded`, async () => {
      const before = callsOf("write_note");
      const send = (headers: Record<string, string>) =>
        raw(`${gw.url}/${service}/mcp`, {
          method: "POST",
          headers: {
            ...MCP_HEADERS,
            authorization: `Bearer ${service === "notes" ? tokens.alice : tokens.plain}`,
            "mcp-protocol-version": MODERN,
            ...headers,
          },
          body: JSON.stringify({
            jsonrpc: "2.0",
            id: 3,
            method: "tools/call",
            params: { name: "write_note", arguments: { text: "x" }, _meta: META },
          }),
        });
      const mismatched = await send({ "mcp-method": "tools/call", "mcp-name": "read_note" });
      expect(mismatched.status).toBe(400);
      expect(JSON.parse(mismatched.text)).toMatchObject({
        jsonrpc: "2.0",
        id: 3,
        error: { code: -32020, data: { mismatch: { header: "read_note" } } },
      });
      // Missing ones, and a method header that names another method, are refused alike.
      const cases: Record<string, string>[] = [
        { "mcp-method": "tools/call" },
        { "mcp-name": "write_note" },
        { "mcp-method": "tools/list", "mcp-name": "write_note" },
        { "mcp-method": "tools/call", "mcp-name": "=?base64?!!!?=" },
      ];
      for (const headers of cases) {
        const res = await send(headers);
        expect(res.status, JSON.stringify(headers)).toBe(400);
        expect(JSON.parse(res.text).error.code).toBe(-32020);
      }
      expect(callsOf("write_note")).toBe(before);
      // Base64 sentinel of the right name is the same name.
      const encoded = `=?base64?${Buffer.from("write_note").toString("base64")}?=`;
      const agreed = await send({ "mcp-method": "tools/call", "mcp-name": encoded });
      expect(agreed.status).toBe(200);
      expect(callsOf("write_note")).toBe(before + 1);
    });
  }

  it("a 2025 request carries no such headers and is not checked", async () => {
    const res = await raw(`${gw.url}/plain/mcp`, {
      method: "POST",
      headers: { ...MCP_HEADERS, authorization: `Bearer ${tokens.plain}`, "mcp-name": "something-else" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2025-06-18",
          capabilities: {},
          clientInfo: { name: "raw", version: "1" },
        },
      }),
    });
    expect(res.status).toBe(200);
  });

  it("bad bodies get JSON-RPC errors, never a 500", async () => {
    const post = (body: string, service = "notes", extra: Record<string, string> = {}) =>
      raw(`${gw.url}/${service}/mcp`, {
        method: "POST",
        headers: {
          ...MCP_HEADERS,
          authorization: `Bearer ${service === "notes" ? tokens.alice : tokens.plain}`,
          ...extra,
        },
        body,
      });
    const notJson = await post("{not json");
    expect(notJson.status).toBe(400);
    expect(JSON.parse(notJson.text).error.code).toBe(-32700);
    const batch = await post(
      JSON.stringify([{ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "write_note" } }]),
    );
    expect(batch.status).toBe(400);
    const tooLarge = await post(JSON.stringify({ pad: "x".repeat(5 * 1024 * 1024) }));
    expect(tooLarge.status).toBe(413);
    const gzipped = await post("{}", "notes", { "content-encoding": "gzip" });
    expect(gzipped.status).toBe(415);
    // On a service without a policy a modern request with a bad body is the upstream's to answer.
    const modernBad = await post("[1,", "plain", { "mcp-protocol-version": MODERN });
    expect(modernBad.status).toBeLessThan(500);
  });

  it("Mcp-Param-* headers (a tool's x-mcp-header arguments) reach the upstream", async () => {
    const res = await modernToolCall(`${gw.url}/notes/mcp`, {
      token: tokens.alice as string,
      name: "read_note",
      id: 9,
      headers: { "mcp-param-region": "eu-west-1" },
    });
    expect(res.status).toBe(200);
    const last = upstream.posts.filter((p) => p.tool === "read_note").at(-1);
    expect(last?.headers["mcp-param-region"]).toBe("eu-west-1");
    expect(last?.headers["mcp-name"]).toBe("read_note");
    expect(last?.headers["mcp-method"]).toBe("tools/call");
  });

  it("one audit event per tool call, without arguments, and per-tool metrics", async () => {
    audit.length = 0;
    const alice = await connect(MODES.legacy, tokens.alice as string);
    const bob = await connect(MODES["pinned 2026-07-28"], tokens.bob as string);
    try {
      await alice.callTool({ name: "write_note", arguments: { text: "secret words" } });
      await alice.callTool({ name: "fail_note", arguments: {} });
      await bob.callTool({ name: "write_note", arguments: { text: "secret words" } }).catch(() => undefined);
    } finally {
      await alice.close();
      await bob.close();
    }
    await expect.poll(() => audit.filter((e) => e.type === "tool.called").length).toBe(3);
    const calls = audit.filter((e) => e.type === "tool.called");
    expect(calls).toEqual([
      expect.objectContaining({
        service: "notes",
        tool: "write_note",
        outcome: "ok",
        user: "alice",
        client_id: "client-a",
        status: 200,
      }),
      expect.objectContaining({ tool: "fail_note", outcome: "tool_error", user: "alice" }),
      expect.objectContaining({ tool: "write_note", outcome: "denied", user: "bob", client_id: "client-b" }),
    ]);
    for (const e of calls) expect((e as { duration_ms: number }).duration_ms).toBeGreaterThanOrEqual(0);
    expect(JSON.stringify(audit)).not.toContain("secret words");
    // Only tool calls are events; listing is not.
    expect(audit.every((e) => e.type === "tool.called")).toBe(true);

    const registry = new Registry();
    gw.requests.metrics.register(registry);
    const text = await registry.metrics();
    expect(text).toMatch(/mcpgw_tool_calls_total\{service="notes",tool="write_note",outcome="ok"\} [1-9]/);
    expect(text).toMatch(
      /mcpgw_tool_calls_total\{service="notes",tool="write_note",outcome="denied"\} [1-9]/,
    );
    expect(text).toMatch(/mcpgw_tool_call_duration_seconds_count\{service="notes",tool="fail_note"\} [1-9]/);
    // The service without a policy is never looked into.
    expect(text).not.toContain('service="plain"');
  });
});
