/**
 * One set of behaviour checks, run against MemoryStore and against EtcdStore on a real local etcd.
 * The memory store is only useful if a consumer cannot tell it from etcd, so every check here is
 * something the gateway's config sync can observe. The etcd half skips (saying why) when there is
 * no etcd binary.
 */

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EtcdStore } from "../../harness/etcd/etcd-store.ts";
import { findEtcdBinary, startLocalEtcd, type LocalEtcd } from "../../harness/etcd/local-etcd.ts";
import { MemoryStore } from "../../harness/gateway/config/memory-store.ts";
import type { Store, WatchBatch, WatchEvent, WatchHandlers } from "../../harness/gateway/config/store.ts";
import { sleep, until } from "../helpers/wait.ts";

/** Long enough for a local etcd to deliver anything it was going to deliver. */
const QUIET_MS = 200;

function recorder() {
  const batches: WatchBatch[] = [];
  const broken: string[] = [];
  const handlers: WatchHandlers = {
    onBatch: (b) => void batches.push(b),
    onBroken: (r) => void broken.push(r),
  };
  return { batches, broken, handlers, events: (): WatchEvent[] => batches.flatMap((b) => b.events) };
}

let prefixCounter = 0;
/** A fresh prefix per test: the etcd half shares one etcd between tests. */
const freshPrefix = (name: string): string => `/conformance-${process.pid}-${++prefixCounter}-${name}/`;

interface Backend {
  name: string;
  /** Why the backend is unavailable, or undefined when it can run. */
  skip?: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  newStore(): Store;
  /** Revision and key count of the store before any test wrote to it. */
  initial(): Promise<{ revision: number; keys: number }>;
  /** Real etcd only: restart the server process. */
  restartServer?: () => Promise<void>;
}

const memoryBackend: Backend = {
  name: "MemoryStore",
  setup: async () => {},
  teardown: async () => {},
  newStore: () => new MemoryStore("conformance"),
  initial: async () => {
    const s = new MemoryStore();
    return { revision: await s.revision(), keys: (await s.range("")).kvs.length };
  },
};

const etcdBinary = findEtcdBinary();
let etcd: LocalEtcd | undefined;
let etcdInitial: { revision: number; keys: number } | undefined;
const etcdBackend: Backend = {
  name: "EtcdStore (local etcd)",
  ...(etcdBinary.path ? {} : { skip: etcdBinary.reason }),
  setup: async () => {
    etcd = await startLocalEtcd({ bin: etcdBinary.path! });
    // Read before any test writes: an empty etcd must be at revision 1 too.
    const probe = new EtcdStore([etcd.endpoint], "probe");
    try {
      etcdInitial = { revision: await probe.revision(), keys: (await probe.range("")).kvs.length };
    } finally {
      await probe.close();
    }
  },
  teardown: async () => {
    await etcd?.stop();
  },
  newStore: () => new EtcdStore([etcd!.endpoint], "conformance"),
  initial: async () => etcdInitial!,
  restartServer: () => etcd!.restartProcess(),
};

for (const backend of [memoryBackend, etcdBackend]) {
  const title = backend.skip ? `${backend.name} (skipped: ${backend.skip})` : backend.name;
  describe.skipIf(!!backend.skip)(`Store conformance: ${title}`, () => {
    const open: Store[] = [];
    const newStore = (): Store => {
      const s = backend.newStore();
      open.push(s);
      return s;
    };

    beforeAll(() => backend.setup(), 20_000);
    afterAll(() => backend.teardown());
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close()));
    });

    it("starts empty at revision 1, like an empty etcd", async () => {
      expect(await backend.initial()).toEqual({ revision: 1, keys: 0 });
    });

    it("bumps the revision by one per write, and the new revision is the key's modRevision", async () => {
      const s = newStore();
      const p = freshPrefix("rev");
      const r0 = await s.revision();
      expect(await s.put(`${p}a`, "1")).toBe(r0 + 1);
      expect((await s.get(`${p}a`))?.modRevision).toBe(r0 + 1);
      expect(await s.put(`${p}b`, "1")).toBe(r0 + 2);
      expect(await s.put(`${p}a`, "2")).toBe(r0 + 3);
      expect((await s.get(`${p}a`))?.modRevision).toBe(r0 + 3);
      expect((await s.get(`${p}b`))?.modRevision).toBe(r0 + 2);
      expect(await s.delete(`${p}b`)).toBe(r0 + 4);
      expect(await s.revision()).toBe(r0 + 4);
      expect((await s.range(p)).revision).toBe(r0 + 4);
    });

    it("keeps createRevision across updates and renews it after delete + put", async () => {
      const s = newStore();
      const k = `${freshPrefix("create")}k`;
      const r1 = await s.put(k, "v1");
      const r2 = await s.put(k, "v2");
      expect(await s.get(k)).toEqual({ key: k, value: "v2", createRevision: r1, modRevision: r2 });
      const r3 = await s.delete(k);
      expect(r3).toBe(r2 + 1);
      expect(await s.get(k)).toBeUndefined();
      const r4 = await s.put(k, "v3");
      expect(r4).toBe(r3! + 1);
      expect(await s.get(k)).toEqual({ key: k, value: "v3", createRevision: r4, modRevision: r4 });
    });

    it("deleting a missing key returns undefined and does not bump the revision", async () => {
      const s = newStore();
      const p = freshPrefix("delmissing");
      await s.put(`${p}k`, "v");
      const r = await s.revision();
      expect(await s.delete(`${p}never-written`)).toBeUndefined();
      expect(await s.revision()).toBe(r);
      expect(await s.delete(`${p}k`)).toBe(r + 1);
      expect(await s.delete(`${p}k`)).toBeUndefined();
      expect(await s.revision()).toBe(r + 1);
    });

    it("ranges by prefix, sorted by key bytes, at the current revision", async () => {
      const s = newStore();
      const base = freshPrefix("range").slice(0, -1); // e.g. /conformance-1-5-range
      const p = `${base}/`;
      // Inserted out of order. "A" < "a" < "a0" < "b" in bytes; U+FF01 (EF BC 81) sorts before
      // U+1F600 (F0 9F 98 80) in UTF-8 although JS string order says the opposite.
      const inside = ["b", "a0", "\u{1F600}", "A", "c/nested", "a", "\uFF01"];
      for (const k of inside) await s.put(`${p}${k}`, `value-${k}`);
      // Near misses that a sloppy prefix match would include (like /apisix2 for /apisix/).
      await s.put(base, "the prefix without its slash");
      await s.put(`${base}2/x`, "sibling");
      await s.put(`${base}0`, "sibling2");
      const { kvs, revision } = await s.range(p);
      expect(revision).toBe(await s.revision());
      expect(kvs.map((kv) => kv.key)).toEqual(["A", "a", "a0", "b", "c/nested", "\uFF01", "\u{1F600}"].map((k) => `${p}${k}`));
      for (const kv of kvs) expect(kv.value).toBe(`value-${kv.key.slice(p.length)}`);
      expect((await s.range(`${base}2/`)).kvs.map((kv) => kv.key)).toEqual([`${base}2/x`]);
      expect((await s.range(`${p}nothing-here/`)).kvs).toEqual([]);
    });

    it("the empty prefix ranges over and watches every key", async () => {
      const s = newStore();
      const p = freshPrefix("everything");
      const rec = recorder();
      await s.watch("", (await s.revision()) + 1, rec.handlers);
      const r1 = await s.put(`${p}a`, "1");
      const r2 = await s.put(`${p}\u{1F600}`, "2");
      const { kvs, revision } = await s.range("");
      expect(revision).toBe(r2);
      expect(kvs.filter((kv) => kv.key.startsWith(p))).toEqual([
        { key: `${p}a`, value: "1", createRevision: r1, modRevision: r1 },
        { key: `${p}\u{1F600}`, value: "2", createRevision: r2, modRevision: r2 },
      ]);
      await until(() => rec.events().length >= 2, "both writes on the watch of everything");
      expect(rec.events().map((ev) => (ev.type === "put" ? ev.kv.key : ev.key))).toEqual([`${p}a`, `${p}\u{1F600}`]);
    });

    it("replays history from an old revision, in revision order, only under the prefix", async () => {
      const s = newStore();
      const p = freshPrefix("replay");
      const other = freshPrefix("replay-other");
      const expected: WatchEvent[] = [];
      const first = await s.put(`${p}a`, "1");
      expected.push({ type: "put", kv: { key: `${p}a`, value: "1", createRevision: first, modRevision: first } });
      await s.put(`${other}x`, "not watched");
      const rB = await s.put(`${p}b`, "1");
      expected.push({ type: "put", kv: { key: `${p}b`, value: "1", createRevision: rB, modRevision: rB } });
      const rA2 = await s.put(`${p}a`, "2");
      expected.push({ type: "put", kv: { key: `${p}a`, value: "2", createRevision: first, modRevision: rA2 } });
      const rDel = (await s.delete(`${p}b`))!;
      expected.push({ type: "delete", key: `${p}b`, modRevision: rDel });

      const all = recorder();
      await s.watch(p, first, all.handlers);
      await until(() => all.events().length >= expected.length, "the replayed history");
      await sleep(QUIET_MS);
      expect(all.events()).toEqual(expected);
      expect(all.broken).toEqual([]);
      // Batches come in revision order and say a revision at or after their events.
      let last = 0;
      for (const b of all.batches) {
        for (const ev of b.events) {
          const rev = ev.type === "put" ? ev.kv.modRevision : ev.modRevision;
          expect(rev).toBeGreaterThan(last);
          expect(b.revision).toBeGreaterThanOrEqual(rev);
          last = rev;
        }
      }

      // From the middle: only what happened at or after that revision.
      const tail = recorder();
      await s.watch(p, rA2, tail.handlers);
      await until(() => tail.events().length >= 2, "the replayed tail");
      await sleep(QUIET_MS);
      expect(tail.events()).toEqual(expected.slice(2));
    });

    it("delivers live put/put/delete in order, one batch per write, never inside the write call", async () => {
      const s = newStore();
      const p = freshPrefix("live");
      const k = `${p}k`;
      let insideWriteCall = false;
      const deliveredInsideWrite: number[] = [];
      const rec = recorder();
      await s.watch(p, (await s.revision()) + 1, {
        onBatch: (b) => {
          if (insideWriteCall) deliveredInsideWrite.push(b.revision);
          rec.handlers.onBatch(b);
        },
        onBroken: rec.handlers.onBroken,
      });
      const write = async (f: () => Promise<number | undefined>): Promise<number> => {
        insideWriteCall = true;
        const pending = f();
        insideWriteCall = false;
        return (await pending)!;
      };
      const r1 = await write(() => s.put(k, "v1"));
      await s.put(`${p.slice(0, -1)}2/x`, "sibling, not watched");
      const r2 = await write(() => s.put(k, "v2"));
      const r3 = await write(() => s.delete(k));
      await until(() => rec.events().length >= 3, "three events");
      await sleep(QUIET_MS);
      expect(deliveredInsideWrite).toEqual([]);
      expect(rec.batches).toEqual([
        { revision: r1, events: [{ type: "put", kv: { key: k, value: "v1", createRevision: r1, modRevision: r1 } }] },
        { revision: r2, events: [{ type: "put", kv: { key: k, value: "v2", createRevision: r1, modRevision: r2 } }] },
        { revision: r3, events: [{ type: "delete", key: k, modRevision: r3 }] },
      ]);
      expect(r2).toBe(r1 + 2); // the sibling write took r1 + 1
      expect(r3).toBe(r2 + 1);
      expect(rec.broken).toEqual([]);
    });

    it("stops delivering after cancel", async () => {
      const s = newStore();
      const p = freshPrefix("cancel");
      const rec = recorder();
      const w = await s.watch(p, (await s.revision()) + 1, rec.handlers);
      await s.put(`${p}a`, "1");
      await until(() => rec.events().length === 1, "the first event");
      await w.cancel();
      await s.put(`${p}a`, "2");
      await sleep(QUIET_MS);
      expect(rec.events()).toHaveLength(1);
      expect(rec.broken).toEqual([]);
    });

    it("breaks a watch from before the compacted revision, but serves one from it", async () => {
      const s = newStore();
      const p = freshPrefix("compact");
      const r1 = await s.put(`${p}a`, "1");
      await s.put(`${p}a`, "2");
      const r3 = await s.put(`${p}a`, "3");
      await s.compact(r3);

      const old = recorder();
      await s.watch(p, r1, old.handlers);
      await until(() => old.broken.length > 0, "onBroken for the compacted revision");
      await sleep(QUIET_MS);
      expect(old.broken).toEqual(["compacted"]);
      expect(old.batches).toEqual([]);

      // The compaction revision itself is kept (etcd compacts everything *before* it).
      const kept = recorder();
      await s.watch(p, r3, kept.handlers);
      await until(() => kept.events().length >= 1, "the event at the compaction revision");
      expect(kept.events()).toEqual([{ type: "put", kv: { key: `${p}a`, value: "3", createRevision: r1, modRevision: r3 } }]);
      expect(kept.broken).toEqual([]);
      // Data survives compaction; only history goes.
      expect((await s.get(`${p}a`))?.value).toBe("3");
      await expect(s.compact(r1)).rejects.toThrow(/compacted/);
      await expect(s.compact((await s.revision()) + 10)).rejects.toThrow(/future revision/);
    });

    it("restart breaks every open watch with onBroken('restart'), keeps the data, and a new watch works", async () => {
      const s = newStore();
      const p = freshPrefix("restart");
      const q = freshPrefix("restart-q");
      const before = await s.put(`${p}a`, "1");
      const w1 = recorder();
      const w2 = recorder();
      await s.watch(p, before + 1, w1.handlers);
      await s.watch(q, before + 1, w2.handlers);

      await s.restart();
      expect(w1.broken).toEqual(["restart"]);
      expect(w2.broken).toEqual(["restart"]);

      // The consumer's resync: range, then watch from the range's revision + 1.
      const { kvs, revision } = await s.range(p);
      expect(kvs.map((kv) => [kv.key, kv.value])).toEqual([[`${p}a`, "1"]]);
      const again = recorder();
      await s.watch(p, revision + 1, again.handlers);
      const r = await s.put(`${p}a`, "2");
      await until(() => again.events().length >= 1, "an event on the new watch");
      await sleep(QUIET_MS);
      expect(again.events()).toEqual([{ type: "put", kv: { key: `${p}a`, value: "2", createRevision: before, modRevision: r } }]);
      // The broken watches stay closed: nothing more for them, and no second onBroken.
      expect(w1.batches).toEqual([]);
      expect(w1.broken).toEqual(["restart"]);
      expect(w2.broken).toEqual(["restart"]);
    });

    it("close() ends watches quietly and refuses further calls", async () => {
      const s = newStore();
      const p = freshPrefix("close");
      const rec = recorder();
      await s.watch(p, (await s.revision()) + 1, rec.handlers);
      await s.close();
      await s.close(); // idempotent
      await expect(s.put(`${p}a`, "1")).rejects.toThrow(/closed/);
      // A second client sees the store is still there and the closed watch got nothing.
      if (backend.restartServer) {
        const other = newStore();
        await other.put(`${p}a`, "1");
      }
      await sleep(QUIET_MS);
      expect(rec.batches).toEqual([]);
      expect(rec.broken).toEqual([]);
    });

    if (backend.restartServer) {
      it("a real etcd process restart breaks open watches; after it the store works again", async () => {
        const s = newStore();
        const p = freshPrefix("realrestart");
        const r1 = await s.put(`${p}a`, "1");
        const rec = recorder();
        await s.watch(p, r1 + 1, rec.handlers);
        await backend.restartServer!();
        await until(() => rec.broken.length > 0, "onBroken after the etcd process restarted");
        expect(rec.broken).toHaveLength(1);
        expect(rec.broken[0]).toMatch(/connection lost/);
        // Data and revision survive the restart (it is the same data dir).
        expect(await s.get(`${p}a`)).toEqual({ key: `${p}a`, value: "1", createRevision: r1, modRevision: r1 });
        const again = recorder();
        await s.watch(p, r1 + 1, again.handlers);
        const r2 = await s.put(`${p}a`, "2");
        await until(() => again.events().length >= 1, "an event after the restart");
        expect(again.events()).toEqual([{ type: "put", kv: { key: `${p}a`, value: "2", createRevision: r1, modRevision: r2 } }]);
        // A client that resubscribes by itself would deliver here; the old watch must stay dead.
        await sleep(QUIET_MS);
        expect(rec.batches).toEqual([]);
      });
    }
  });
}

describe("MemoryStore speed", () => {
  it("runs 1000 short watch/write sequences well within a second", async () => {
    const t0 = performance.now();
    let delivered = 0;
    for (let i = 0; i < 1000; i++) {
      const s = new MemoryStore();
      await s.watch("/apisix/", 1, { onBatch: (b) => void (delivered += b.events.length), onBroken: () => {} });
      for (let j = 0; j < 10; j++) await s.put(`/apisix/routes/${j % 3}`, `{"n":${j}}`);
      await s.delete("/apisix/routes/0");
      await s.range("/apisix/");
      await s.close();
    }
    const ms = performance.now() - t0;
    expect(delivered).toBe(1000 * 11);
    // ~130 ms on the dev machine; the bound leaves room for slow CI machines.
    expect(ms).toBeLessThan(1000);
  });
});
