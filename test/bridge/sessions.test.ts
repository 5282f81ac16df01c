import type { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { describe, expect, it } from "vitest";
import { childrenOf, closedAfterEach, connectClient, everythingBridge, isAlive, waitFor } from "./helpers.js";

const open = closedAfterEach();

function textOf(result: unknown): string {
  const content = (result as { content: Array<{ type: string; text?: string }> }).content;
  return content.map((c) => c.text ?? "").join("");
}

describe("bridge sessions", () => {
  it("lists the everything server's tools and makes real calls", async () => {
    ({ bridge: open.bridge } = await everythingBridge());
    const client = await connectClient(open.bridge.url);
    open.clients.push(client);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(["echo", "get-sum", "get-env"]));
    expect(textOf(await client.callTool({ name: "echo", arguments: { message: "hello bridge" } }))).toContain(
      "hello bridge",
    );
    expect(textOf(await client.callTool({ name: "get-sum", arguments: { a: 19, b: 23 } }))).toContain("42");
  });

  it("per-session: two concurrent sessions get two separate child processes", async () => {
    ({ bridge: open.bridge } = await everythingBridge());
    const [a, b] = await Promise.all([connectClient(open.bridge.url), connectClient(open.bridge.url)]);
    open.clients.push(a, b);
    expect(open.bridge.sessions()).toBe(2);
    const pids = open.bridge.childPids();
    expect(pids).toHaveLength(2);
    expect(new Set(pids).size).toBe(2);
    for (const pid of pids) expect(childrenOf(process.pid)).toContain(pid);
    const [ra, rb] = await Promise.all([
      a.callTool({ name: "echo", arguments: { message: "from a" } }),
      b.callTool({ name: "echo", arguments: { message: "from b" } }),
    ]);
    expect(textOf(ra)).toContain("from a");
    expect(textOf(rb)).toContain("from b");
    // DELETE ends one session and its child only.
    const transport = a.transport as StreamableHTTPClientTransport;
    expect(transport.sessionId).toBeTruthy();
    await transport.terminateSession();
    await waitFor(() => open.bridge?.childPids().length === 1);
    const gone = pids.find((pid) => !open.bridge?.childPids().includes(pid)) as number;
    await waitFor(() => !isAlive(gone));
    expect(open.bridge.sessions()).toBe(1);
    expect(open.bridge.childPids().filter(isAlive)).toHaveLength(1);
  });

  it("shared: one child serves every session, with ids remapped per session", async () => {
    ({ bridge: open.bridge } = await everythingBridge({ sessionMode: "shared" }));
    const [a, b, c] = await Promise.all([
      connectClient(open.bridge.url),
      connectClient(open.bridge.url),
      connectClient(open.bridge.url),
    ]);
    open.clients.push(a, b, c);
    expect(open.bridge.sessions()).toBe(3);
    expect(open.bridge.childPids()).toHaveLength(1);
    // Every SDK client numbers its requests from 0: the same ids, concurrently, on one child.
    const results = await Promise.all(
      [a, b, c].flatMap((client, i) =>
        [0, 1, 2].map((j) => client.callTool({ name: "get-sum", arguments: { a: i * 100, b: j } })),
      ),
    );
    expect(results.map(textOf).map((t) => Number(/is (\d+)\.$/.exec(t)?.[1]))).toEqual([
      0, 1, 2, 100, 101, 102, 200, 201, 202,
    ]);
    // Later sessions were answered from the first initialize: same server identity.
    expect(b.getServerVersion()).toEqual(a.getServerVersion());
  });

  it("gives the child only PATH, HOME and its configured env, never the gateway's secrets", async () => {
    process.env.BRIDGE_TEST_SECRET = "must-not-leak";
    try {
      ({ bridge: open.bridge } = await everythingBridge({ env: { GIVEN_VAR: "given-value" } }));
      const client = await connectClient(open.bridge.url);
      open.clients.push(client);
      const env = JSON.parse(textOf(await client.callTool({ name: "get-env", arguments: {} })));
      expect(env.GIVEN_VAR).toBe("given-value");
      expect(env.PATH).toBe(process.env.PATH);
      expect(env.BRIDGE_TEST_SECRET).toBeUndefined();
    } finally {
      delete process.env.BRIDGE_TEST_SECRET;
    }
  });
});
