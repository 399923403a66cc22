import { afterEach, describe, expect, it } from "vitest";
import { MemoryStore } from "../../harness/gateway/config/memory-store.ts";
import { StoreError } from "../../harness/gateway/config/store.ts";
import { configEtcdOf } from "../../harness/gateway/lua/lua-engine.ts";
import { resolveLuaTree } from "../../harness/gateway/lua/sources.ts";
import { modelVersion } from "../../harness/gateway/model-engine.ts";
import { getProfile } from "../../harness/gateway/versions/index.ts";
import { InprocTarget } from "../../harness/targets/inproc.ts";
import { fixtureText, TWO_BACKENDS } from "../helpers/inproc.ts";
import { luaUnavailable, SOURCES } from "../helpers/lua.ts";

/**
 * The world's etcd watch as APISIX's core/config_etcd.lua follows it: a restart resumes the watch
 * (no object is rebuilt); only a watch that fell behind a compaction reloads everything, and
 * 3.18.0's reload keeps the objects whose modifiedIndex did not change.
 */
let t: InprocTarget | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function gateway(version: string, prefix = "/apisix-run-7"): Promise<InprocTarget> {
  t = await InprocTarget.create({ version: modelVersion(getProfile(version)), store: new MemoryStore(), prefix, backends: TWO_BACKENDS, network: "simulated" });
  await t.admin("PUT", "/apisix/admin/routes/1", fixtureText("routes/two-backends.json"));
  return t;
}

/** Two writes and a compaction while the gateway is away, so its watch falls behind. */
async function fallBehind(g: InprocTarget): Promise<void> {
  await g.etcd("disconnect");
  await g.admin("PUT", "/apisix/admin/routes/2", fixtureText("routes/second-route.json"));
  await g.admin("PATCH", "/apisix/admin/routes/2", '{"desc":"while away"}');
  await g.etcd("compact");
  await g.etcd("reconnect");
}

describe("the gateway's etcd watch", () => {
  it("a text another writer put that is not JSON is logged and left out; the Admin API's texts decode to one object per change", async () => {
    const g = await gateway("3.18.0", "/apisix");
    const mine = g.gateway.config.getRoute("1")!;
    expect(mine.value).toBe(mine.value);
    expect(mine.value).toEqual(JSON.parse(mine.raw));
    const rev = await g.store.put("/apisix/routes/9", '{"uri": "/broken"');
    await g.gateway.config.waitForRevision(rev);
    expect(g.gateway.config.getRoute("9")).toBeUndefined();
    expect((await g.logLines()).map((l) => l.text)).toEqual([expect.stringMatching(/\[error\].*config_etcd\.lua:540: load_full_data\(\): failed to decode \/apisix\/routes\/9: invalid JSON/)]);
    // The same text another writer put is decoded (and kept) all the same.
    const again = await g.store.put("/apisix/routes/8", mine.raw);
    await g.gateway.config.waitForRevision(again);
    expect(g.gateway.config.getRoute("8")!.value).toEqual(mine.value);
    expect(g.gateway.config.getRoute("8")!.value).not.toBe(mine.value);
  });

  it("an etcd restart resumes the watch: the route object is the one it was, runtime fields and all", async () => {
    const g = await gateway("3.15.0");
    const before = g.gateway.config.getRoute("1")!;
    await g.etcd("restart");
    expect(g.gateway.config.getRoute("1")).toBe(before);
    expect([g.gateway.config.resumes, g.gateway.config.reloads]).toEqual([1, 1]);
    // A write after the restart arrives through the resumed watch.
    await g.admin("PATCH", "/apisix/admin/routes/1", '{"desc":"after"}');
    expect(g.gateway.config.getRoute("1")!.value.desc).toBe("after");
    expect((await g.logLines()).filter((l) => l.text.includes("config_etcd.lua"))).toEqual([]);
  });

  it("a watch that fell behind a compaction reloads everything, logging what config_etcd.lua@3.15.0 logs", async () => {
    const g = await gateway("3.15.0");
    const before = g.gateway.config.getRoute("1")!;
    await fallBehind(g);
    const after = g.gateway.config.getRoute("1")!;
    expect(after).not.toBe(before);
    expect(after.modifiedIndex).toBe(before.modifiedIndex);
    expect(g.gateway.config.getRoute("2")!.value.desc).toBe("while away");
    expect(g.gateway.config.reloads).toBe(2);
    const lines = (await g.logLines()).map((l) => l.text.replace(/^.*?\[lua\] /, ""));
    expect(lines).toEqual([
      expect.stringMatching(/^config_etcd\.lua:251: watch canceled by etcd, res: \{result = \{canceled = true, compact_revision = "\d+"\}\}, context: ngx\.timer$/),
      expect.stringMatching(/^config_etcd\.lua:254: etcd compacted, compact_revision=\d+, context: ngx\.timer$/),
      "config_etcd.lua:705: sync_data(): waitdir [/routes] err: compacted, will read the configuration again via readdir, context: ngx.timer",
    ]);
  });

  it("3.18.0's reload keeps the objects whose modifiedIndex did not change", async () => {
    const g = await gateway("3.18.0");
    const before = g.gateway.config.getRoute("1")!;
    await fallBehind(g);
    expect(g.gateway.config.getRoute("1")).toBe(before);
    expect((await g.logLines()).some((l) => l.text.includes("config_etcd.lua:759: sync_data(): waitdir [/routes] err: compacted"))).toBe(true);
  });

  it("a change the cache never applies because the store died says so, naming the store", async () => {
    // The store dies between a write and its watch event: the watch breaks and cannot resume.
    class DyingStore extends MemoryStore {
      dead = false;
      private refuse(): never {
        throw new StoreError("etcd at 127.0.0.1:9 does not answer (ECONNREFUSED)");
      }
      override async isCompacted(revision: number): Promise<boolean> {
        return this.dead ? this.refuse() : super.isCompacted(revision);
      }
      override async revision(): Promise<number> {
        return this.dead ? this.refuse() : super.revision();
      }
    }
    const store = new DyingStore();
    t = await InprocTarget.create({ version: modelVersion(getProfile("3.15.0")), store, backends: TWO_BACKENDS, network: "simulated" });
    const applied = t.gateway.config.appliedRevision;
    store.dead = true;
    await store.restart();
    await expect(t.gateway.config.waitForRevision(applied + 1, 200)).rejects.toThrow(
      /did not apply revision \d+ within 200 ms .*: the watch is broken and cannot resume: etcd at 127\.0\.0\.1:9 does not answer/,
    );
    store.dead = false;
  });

  it("the gateway shows APISIX's /apisix prefix whatever namespace the run's keys have in the store", async () => {
    const g = await gateway("3.16.0", "/apisix-run-42");
    expect(await g.store.get("/apisix-run-42/routes/1")).toBeDefined();
    expect(g.gateway.config.getRoute("1")!.key).toBe("/apisix/routes/1");
    expect(JSON.parse((await g.admin("GET", "/apisix/admin/routes/1")).body)).toMatchObject({ key: "/apisix/routes/1" });
  });
});

const skip = luaUnavailable();
describe.skipIf(skip)(`config_etcd.lua read from a tree${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("finds each log call's line and whether a reload keeps unchanged objects, as the profiles say", () => {
    for (const v of ["3.15.0", "3.16.0", "3.17.0", "3.18.0"]) {
      expect(configEtcdOf(resolveLuaTree(v, SOURCES)), v).toEqual(getProfile(v).configEtcd);
    }
  });
});
