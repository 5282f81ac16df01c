/**
 * The refresh rotation's contract (src/store/refresh-rotation.ts), run by contract.ts on every
 * engine: the decision table, the TTLs it sets, and one order for concurrent callers on several
 * store instances.
 */
import { expect, it } from "vitest";
import {
  FAMILY_NS,
  familyKey,
  NEXT_NS,
  nextKey,
  type RefreshFamily,
  type RefreshRotation,
  ROTATED_NS,
  rotatedKey,
} from "../../src/store/refresh-rotation.js";
import type { Store } from "../../src/store/store.js";

export interface RotationContext {
  store(): Store;
  open(): Promise<Store>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let families = 0;

export function rotationContract(ctx: RotationContext): void {
  /** A fresh family whose current token hashes to `h0`. */
  async function family(): Promise<string> {
    const sid = `grant-${process.pid}-${++families}-${Date.now()}`;
    await ctx.store().put(FAMILY_NS, familyKey(sid), { current: "h0", issued_at: 1 }, 600);
    return sid;
  }
  const rotation = (
    sid: string,
    presented: string,
    successor: string,
    extra: Partial<RefreshRotation> = {},
  ) => ({
    sid,
    presented,
    successor,
    sealedSuccessor: `sealed-${successor}`,
    issuedAt: 1_000,
    ttlSeconds: 600,
    graceSeconds: 10,
    ...extra,
  });
  const familyOf = async (sid: string) =>
    (await ctx.store().get(FAMILY_NS, familyKey(sid))) as RefreshFamily | undefined;

  it("rotation: the current token gets the successor; the family, mark and window get their TTLs", async () => {
    const store = ctx.store();
    const sid = await family();
    const before = Date.now();
    expect(await store.rotateRefresh(rotation(sid, "h0", "h1"))).toEqual({ outcome: "rotated" });
    const after = await familyOf(sid);
    expect(after).toMatchObject({ current: "h1", previous: "h0", issued_at: 1_000 });
    expect(after?.rotated_at).toBeGreaterThanOrEqual(before);
    expect(after?.rotated_at).toBeLessThanOrEqual(Date.now());
    const expiry = async (ns: string, key: string) => (await store.list(ns, key))[0]?.expiresAt ?? 0;
    expect(await expiry(FAMILY_NS, familyKey(sid))).toBeGreaterThan(Date.now() + 590_000);
    expect(await expiry(ROTATED_NS, rotatedKey(sid, "h0"))).toBeGreaterThan(Date.now() + 590_000);
    expect(await store.get(NEXT_NS, nextKey(sid))).toEqual({ for: "h0", sealed: "sealed-h1" });
    // On Redis the window is set by the confirmation that follows the answer (redis-rotation.ts).
    await expect
      .poll(async () => (await expiry(NEXT_NS, nextKey(sid))) - Date.now())
      .toBeLessThanOrEqual(10_000);
  });

  it("rotation: the predecessor inside the window gets the same sealed successor and changes nothing", async () => {
    const store = ctx.store();
    const sid = await family();
    await store.rotateRefresh(rotation(sid, "h0", "h1"));
    const state = await familyOf(sid);
    expect(await store.rotateRefresh(rotation(sid, "h0", "other"))).toEqual({
      outcome: "replayed",
      sealed: "sealed-h1",
    });
    expect(await familyOf(sid)).toEqual(state);
  });

  it("rotation: without a sealed successor, the predecessor inside the window is superseded, not reuse", async () => {
    const store = ctx.store();
    const sid = await family();
    await store.rotateRefresh(rotation(sid, "h0", "h1", { sealedSuccessor: undefined }));
    expect(await store.get(NEXT_NS, nextKey(sid))).toEqual({ for: "h0" });
    expect(await store.rotateRefresh(rotation(sid, "h0", "h2"))).toEqual({ outcome: "superseded" });
    expect((await familyOf(sid))?.current).toBe("h1");
  });

  it("rotation: the predecessor after the window, or with no window, is reuse and ends the family", async () => {
    const store = ctx.store();
    const windowed = await family();
    await store.rotateRefresh(rotation(windowed, "h0", "h1", { graceSeconds: 0.2 }));
    await sleep(300);
    expect(await store.rotateRefresh(rotation(windowed, "h0", "h2"))).toEqual({ outcome: "reused" });
    expect(await familyOf(windowed)).toBeUndefined();
    expect(await store.rotateRefresh(rotation(windowed, "h1", "h2"))).toEqual({ outcome: "unknown" });

    const strict = await family();
    await store.rotateRefresh(rotation(strict, "h0", "h1", { graceSeconds: 0 }));
    expect(await store.get(NEXT_NS, nextKey(strict))).toBeUndefined();
    expect(await store.rotateRefresh(rotation(strict, "h0", "h2", { graceSeconds: 0 }))).toEqual({
      outcome: "reused",
    });
    expect(await familyOf(strict)).toBeUndefined();
  });

  it("rotation: once the successor is used, the token before it is reuse (two rotations old)", async () => {
    const store = ctx.store();
    const sid = await family();
    await store.rotateRefresh(rotation(sid, "h0", "h1"));
    expect(await store.rotateRefresh(rotation(sid, "h1", "h2"))).toEqual({ outcome: "rotated" });
    // h1 is now the predecessor (served the same h2); h0 is older: reuse.
    expect(await store.rotateRefresh(rotation(sid, "h1", "x"))).toEqual({
      outcome: "replayed",
      sealed: "sealed-h2",
    });
    expect(await store.rotateRefresh(rotation(sid, "h0", "x"))).toEqual({ outcome: "reused" });
    expect(await familyOf(sid)).toBeUndefined();
    expect(await store.get(NEXT_NS, nextKey(sid))).toBeUndefined();
  });

  it("rotation: a hash the family never issued, or no family, is unknown and changes nothing", async () => {
    const store = ctx.store();
    const sid = await family();
    expect(await store.rotateRefresh(rotation(sid, "forged", "h1"))).toEqual({ outcome: "unknown" });
    expect(await familyOf(sid)).toEqual({ current: "h0", issued_at: 1 });
    expect(await store.rotateRefresh(rotation(`${sid}-none`, "h0", "h1"))).toEqual({ outcome: "unknown" });
  });

  it("rotation: the entry alongside is written with its TTL when a token is handed out, and only then", async () => {
    const store = ctx.store();
    const sid = await family();
    const alongside = (n: number) => ({ ns: "grants", key: sid, value: { n }, ttlSeconds: 600 });
    const grant = async () => (await store.list("grants", sid)).find((e) => e.key === sid);
    // Nothing handed out: unknown and superseded write nothing.
    expect(await store.rotateRefresh(rotation(sid, "forged", "h1", { alongside: alongside(0) }))).toEqual({
      outcome: "unknown",
    });
    expect(await grant()).toBeUndefined();
    expect(await store.rotateRefresh(rotation(sid, "h0", "h1", { alongside: alongside(1) }))).toEqual({
      outcome: "rotated",
    });
    const written = await grant();
    expect(written?.value).toEqual({ n: 1 });
    expect(written?.expiresAt).toBeGreaterThan(Date.now() + 590_000);
    expect(written?.expiresAt).toBeLessThanOrEqual(Date.now() + 600_000);
    // The predecessor inside the window gets the same successor and renews the entry too.
    expect(await store.rotateRefresh(rotation(sid, "h0", "x", { alongside: alongside(2) }))).toEqual({
      outcome: "replayed",
      sealed: "sealed-h1",
    });
    expect((await grant())?.value).toEqual({ n: 2 });
    // Reuse ends the family and leaves the entry to its owner (the caller revokes the grant).
    await store.rotateRefresh(rotation(sid, "h1", "h2"));
    expect(await store.rotateRefresh(rotation(sid, "h0", "x", { alongside: alongside(3) }))).toEqual({
      outcome: "reused",
    });
    expect((await grant())?.value).toEqual({ n: 2 });

    const bare = await family();
    await store.rotateRefresh(rotation(bare, "h0", "h1", { sealedSuccessor: undefined }));
    const superseded = rotation(bare, "h0", "h2", { alongside: { ...alongside(4), key: bare } });
    expect(await store.rotateRefresh(superseded)).toEqual({ outcome: "superseded" });
    expect((await store.list("grants", bare)).find((e) => e.key === bare)).toBeUndefined();
  });

  it("rotation: of 40 concurrent rotations on several instances, one rotates and the rest get its successor", async () => {
    const instances = [ctx.store(), await ctx.open(), await ctx.open(), await ctx.open()];
    for (let round = 0; round < 3; round++) {
      const sid = await family();
      const outcomes = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          (instances[i % instances.length] as Store).rotateRefresh(rotation(sid, "h0", `s${i}`)),
        ),
      );
      const winners = outcomes.flatMap((o, i) => (o.outcome === "rotated" ? [i] : []));
      expect(winners).toHaveLength(1);
      const winner = `s${winners[0]}`;
      expect(outcomes.filter((o) => o.outcome !== "rotated")).toEqual(
        Array(39).fill({ outcome: "replayed", sealed: `sealed-${winner}` }),
      );
      expect((await familyOf(sid))?.current).toBe(winner);
    }
  });

  it("rotation: rejects a grant id that could leave its hash slot", async () => {
    await expect(ctx.store().rotateRefresh(rotation("a}b{c", "h0", "h1"))).rejects.toThrow(RangeError);
  });
}
