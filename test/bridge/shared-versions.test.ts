/**
 * Shared mode: one child serves every session, but each session's `initialize` is answered with
 * the protocol version that session asked for (when the child speaks it), not the first one's.
 */
import { describe, expect, it } from "vitest";
import { closedAfterEach, everythingBridge, initializeRequest, post } from "./helpers.js";

const open = closedAfterEach();

async function negotiated(url: string, version: string): Promise<string> {
  const res = await post(url, initializeRequest(1, version), { accept: "application/json" });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { result: { protocolVersion: string } };
  return body.result.protocolVersion;
}

describe("shared mode, several protocol versions", () => {
  it("answers three sessions with the three versions they asked for", async () => {
    ({ bridge: open.bridge } = await everythingBridge({ sessionMode: "shared" }));
    const url = open.bridge.url;
    // One after the other: the first one initializes the child, the rest are answered by the bridge.
    expect(await negotiated(url, "2025-06-18")).toBe("2025-06-18");
    expect(await negotiated(url, "2025-03-26")).toBe("2025-03-26");
    expect(await negotiated(url, "2024-11-05")).toBe("2024-11-05");
    expect(open.bridge.childPids()).toHaveLength(1);
    expect(open.bridge.sessions()).toBe(3);
  });

  it("answers concurrent sessions with their own versions while the child initializes", async () => {
    ({ bridge: open.bridge } = await everythingBridge({ sessionMode: "shared" }));
    const url = open.bridge.url;
    const versions = ["2025-06-18", "2025-03-26", "2024-11-05"];
    expect(await Promise.all(versions.map((v) => negotiated(url, v)))).toEqual(versions);
  });

  it("offers its own version to a session asking for one it does not know", async () => {
    ({ bridge: open.bridge } = await everythingBridge({ sessionMode: "shared" }));
    const url = open.bridge.url;
    const first = await negotiated(url, "2025-06-18");
    expect(await negotiated(url, "2031-01-01")).not.toBe("2031-01-01");
    expect(first).toBe("2025-06-18");
  });
});
