/**
 * The relay's replay cache (src/cluster/signature.ts RelayVerifier) is bounded, and the bound
 * never lets a request be accepted twice inside its freshness window: a full cache forgets only
 * nonces whose window is over, and refuses ("busy") rather than forget a live one. Signed
 * requests are real ones (signRelayed with the same key); the clock is the verifier's own input.
 */
import { describe, expect, it, vi } from "vitest";
import { FRESHNESS_SECONDS, RelayVerifier, relayKey, signRelayed } from "../../src/cluster/signature.js";

const key = relayKey("cluster-secret-for-the-nonce-cache-test-0123456789");
const target = "http://127.0.0.1:9999";

function signed(): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = { "mcp-session-id": "s1" };
  signRelayed(key, { method: "POST", target, path: "/counter/mcp", body: Buffer.from("{}") }, headers);
  return headers;
}

const request = { method: "POST", target, path: "/counter/mcp", body: Buffer.from("{}") };

describe("the relay's nonce cache", () => {
  it("when full, refuses new requests rather than forget a live nonce: no replay inside the window", () => {
    let now = Date.now();
    const verifier = new RelayVerifier(key, () => now, 3);
    const first = signed();
    const sent = [first, signed(), signed()];
    for (const h of sent) expect(verifier.verify(request, h).ok).toBe(true);
    expect(verifier.remembered).toBe(3);
    // Full of live nonces: a new request is refused, and every one seen is still a replay.
    expect(verifier.verify(request, signed())).toEqual({ ok: false, reason: "busy" });
    now += 5_000;
    for (const h of sent) expect(verifier.verify(request, h)).toEqual({ ok: false, reason: "replayed" });
    expect(verifier.remembered).toBe(3);
  });

  it("forgets nonces once their window is over, and then takes new ones", () => {
    // The signer reads the wall clock: it is set for this test (Date only).
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      const start = Date.parse("2026-12-02T06:00:00Z");
      vi.setSystemTime(start);
      const verifier = new RelayVerifier(key, Date.now, 3);
      const old = [signed(), signed(), signed()];
      for (const h of old) expect(verifier.verify(request, h).ok).toBe(true);
      expect(verifier.verify(request, signed())).toEqual({ ok: false, reason: "busy" });
      // Just past the old ones' window: they are forgotten to make room, and are stale anyway.
      vi.setSystemTime(start + FRESHNESS_SECONDS * 1000 + 1);
      const fresh = signed();
      expect(verifier.verify(request, fresh).ok).toBe(true);
      expect(verifier.remembered).toBe(1);
      for (const h of old) expect(verifier.verify(request, h)).toEqual({ ok: false, reason: "stale" });
      expect(verifier.verify(request, fresh)).toEqual({ ok: false, reason: "replayed" });
    } finally {
      vi.useRealTimers();
    }
  });
});
