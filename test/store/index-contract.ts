/**
 * The owner index's contract (Store.indexAdd / indexMembers / indexRemove), run by contract.ts on
 * every engine: members per owner, each with its own expiry, shared by every store instance, and
 * never confused with the key/value entries.
 */
import { expect, it } from "vitest";
import type { Store } from "../../src/store/store.js";

export interface IndexContext {
  store(): Store;
  open(): Promise<Store>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sorted = async (p: Promise<string[]>) => (await p).sort();

export function indexContract(ctx: IndexContext): void {
  it("index: lists an owner's members, apart from other owners', and removes them", async () => {
    const store = ctx.store();
    await store.indexAdd("user:ada", "grants:g1", 60);
    await store.indexAdd("user:ada", "consents:ada:c1", 60);
    await store.indexAdd("user:ada", "grants:g1", 60); // twice is once
    await store.indexAdd("user:ada:x", "grants:other", 60); // an owner that extends another's name
    await store.indexAdd("client:c1", "grants:g1");
    expect(await sorted(store.indexMembers("user:ada"))).toEqual(["consents:ada:c1", "grants:g1"]);
    expect(await store.indexMembers("user:ada:x")).toEqual(["grants:other"]);
    expect(await store.indexMembers("client:c1")).toEqual(["grants:g1"]);
    expect(await store.indexMembers("user:nobody")).toEqual([]);

    await store.indexRemove("user:ada", ["grants:g1", "grants:never-there"]);
    expect(await store.indexMembers("user:ada")).toEqual(["consents:ada:c1"]);
    await store.indexRemove("user:ada", []);
    await store.indexRemove("user:ada", ["consents:ada:c1"]);
    expect(await store.indexMembers("user:ada")).toEqual([]);
    expect(await store.indexMembers("client:c1")).toEqual(["grants:g1"]);
  });

  it("index: each member expires on its own; adding it again sets its new expiry", async () => {
    const store = ctx.store();
    await store.indexAdd("user:t", "sessions:short", 1);
    await store.indexAdd("user:t", "sessions:renewed", 1);
    await store.indexAdd("user:t", "grants:long", 60);
    await store.indexAdd("user:t", "keys:forever", 0);
    await store.indexAdd("user:t", "sessions:renewed", 60);
    await store.indexAdd("user:only-short", "sessions:x", 1);
    await sleep(1_100);
    expect(await sorted(store.indexMembers("user:t"))).toEqual([
      "grants:long",
      "keys:forever",
      "sessions:renewed",
    ]);
    expect(await store.indexMembers("user:only-short")).toEqual([]);
    // An owner whose last member expired starts again from nothing.
    await store.indexAdd("user:only-short", "sessions:y", 60);
    expect(await store.indexMembers("user:only-short")).toEqual(["sessions:y"]);
  });

  it("index: one index for every instance, with unicode owners and members", async () => {
    const [a, b] = [ctx.store(), await ctx.open()];
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).indexAdd("user:zoë 🦊", `grants:g${i}`, 60)),
    );
    expect(await b.indexMembers("user:zoë 🦊")).toHaveLength(40);
    await a.indexRemove(
      "user:zoë 🦊",
      Array.from({ length: 20 }, (_, i) => `grants:g${i}`),
    );
    expect(await sorted(b.indexMembers("user:zoë 🦊"))).toEqual(
      Array.from({ length: 20 }, (_, i) => `grants:g${i + 20}`).sort(),
    );
  });

  it("index: is not a key/value namespace, and the namespace of that name is refused", async () => {
    const store = ctx.store();
    await store.indexAdd("user:kv", "grants:g", 60);
    await store.put("users", "kv", { name: "kv" });
    expect(await store.list("users")).toEqual([{ key: "kv", value: { name: "kv" } }]);
    await expect(store.put("index", "user:kv", 1)).rejects.toThrow(/namespace/);
    expect(await store.indexMembers("user:kv")).toEqual(["grants:g"]);
  });

  it("index: keeps members and their expiry across close and reopen", async () => {
    const store = ctx.store();
    await store.indexAdd("client:keep", "grants:g", 3_600);
    await store.close();
    const reopened = await ctx.open();
    expect(await reopened.indexMembers("client:keep")).toEqual(["grants:g"]);
  });
}
