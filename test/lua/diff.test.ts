import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acquireStore, storePerRun, type ProvisionedStore } from "../../harness/etcd/provision.ts";
import { MemoryStore } from "../../harness/gateway/config/memory-store.ts";
import { normaliseLine } from "../../harness/gateway/log/signature.ts";
import { luaVersions } from "../../harness/gateway/lua/lua-engine.ts";
import { closeIdleWorkers } from "../../harness/gateway/lua/lua-worker.ts";
import { modelVersion } from "../../harness/gateway/model-engine.ts";
import { getProfile, RELEASES } from "../../harness/gateway/versions/index.ts";
import { findScenarioFiles, loadScenario } from "../../harness/runner/load.ts";
import { runDiff } from "../../harness/runner/diff.ts";
import { diffLifecycle } from "../../harness/props/lifecycle/diff.ts";
import { PAIRS_ORDER_CHANCE } from "../../harness/gateway/engine.ts";
import { InprocFactory } from "../../harness/targets/inproc.ts";
import { luaUnavailable, SOURCES } from "../helpers/lua.ts";
import { hasEtcdBinary } from "../helpers/processes.ts";

const skip = luaUnavailable();
afterAll(closeIdleWorkers);

const names = RELEASES.map((p) => p.name);
const models = () => RELEASES.map(modelVersion);
const describeLine = (d: { file: string; version: string; first: string }) => `${d.file} ${d.version}: ${d.first}`;

describe("the log signature", () => {
  it("takes out what differs between runs but not between behaviours: revisions, prefixes, ports, addresses", () => {
    const a = normaliseLine('watch canceled by etcd, res: {result = {canceled = true, compact_revision = "108"}}, routes /apisix-1-ab-3-1/routes/1 127.0.0.1:40123 checker#4');
    const b = normaliseLine('watch canceled by etcd, res: {result = {canceled = true, compact_revision = "244"}}, routes /apisix-2-cd-9-1/routes/1 127.0.0.1:51234 checker@0x7ffff7c38f70');
    expect(a).toBe(b);
    expect(normaliseLine("received smaller revision, rev=12, watch_ctx.rev=40. etcd may be restarted")).toBe("received smaller revision, rev=<revision>, watch_ctx.rev=<revision>. etcd may be restarted");
    // What says something about behaviour stays: a line number, a level word, an instance index.
    expect(normaliseLine("healthcheck_manager.lua:242: attempt to index")).not.toBe(normaliseLine("healthcheck_manager.lua:184: attempt to index"));
  });
});

describe.skipIf(skip)(`the model against APISIX's own Lua${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("agree on every catalogue scenario and release (memory store, seed 1)", async () => {
    const result = await runDiff({
      scenarios: findScenarioFiles(["scenarios"]).map(loadScenario),
      model: models(),
      lua: luaVersions(names, SOURCES),
      factory: new InprocFactory(() => new MemoryStore(), "memory"),
      seed: 1,
    });
    expect(result.runs.length).toBeGreaterThanOrEqual(80);
    expect(result.disagreements.map(describeLine)).toEqual([]);
  }, 120_000);

  it("agree on which of a name's addresses the DNS client keeps, whatever the seed (both draw LuaJIT's math.random)", async () => {
    // 3.15.0/3.16.0 keep one address picked by math.random; with its own generator the model
    // picked another one than LuaJIT at seeds 3, 4 and 6, so its first probe came a second apart.
    const cases: [string, number][] = [["3.15.0", 3], ["3.16.0", 4], ["3.15.0", 6], ["3.16.0", 6]];
    for (const [version, seed] of cases) {
      const result = await runDiff({
        scenarios: [loadScenario("scenarios/dns-order-change-keeps-checker.yaml")],
        model: [modelVersion(getProfile(version))],
        lua: luaVersions([version], SOURCES),
        factory: new InprocFactory(() => new MemoryStore(), "memory"),
        seed,
      });
      expect(result.runs).toHaveLength(1);
      expect(result.disagreements.map((d) => `seed ${seed}: ${describeLine(d)}`)).toEqual([]);
    }
  }, 60_000);

  it("a model that logs the crash at another line is caught, with the first line where they part", async () => {
    const real = getProfile("3.15.0");
    const wrong = modelVersion({ ...real, manager: { ...real.manager, lines: { ...real.manager.lines, workingIndex: 243 } } });
    const result = await runDiff({
      scenarios: [loadScenario("scenarios/13101-crash-loop-after-patch.yaml")],
      model: [wrong],
      lua: luaVersions(["3.15.0"], SOURCES),
      factory: new InprocFactory(() => new MemoryStore(), "memory"),
      seed: 1,
    });
    expect(result.disagreements).toHaveLength(1);
    expect(result.disagreements[0]!.kind).toBe("log");
    expect(result.disagreements[0]!.first).toMatch(/^model: \d+s \[error\] .*healthcheck_manager\.lua:243: .*\nlua: {3}\d+s \[error\] .*healthcheck_manager\.lua:242: /);
    // The re-check in key order does not excuse it: still a real difference.
    expect(result.rechecked).toBe(true);
    expect(result.disagreements[0]!.chance).toBeUndefined();
    expect(result.unexpected).toHaveLength(1);
  }, 60_000);

  it("a disagreement that pairs() order decides is re-checked in key order and labelled chance", async () => {
    // At seed 2 LuaJIT walks the working pool so that 3.15.0 indexes the removed instance's nil
    // `upstream` first, where the model's order reaches ai-proxy-multi.lua:304 first.
    const diff = (recheck: boolean) =>
      runDiff({
        scenarios: [loadScenario("scenarios/instance-removed-while-working.yaml")],
        model: [modelVersion(getProfile("3.15.0"))],
        lua: luaVersions(["3.15.0"], SOURCES),
        factory: new InprocFactory(() => new MemoryStore(), "memory"),
        seed: 2,
        recheck,
      });
    const without = await diff(false);
    expect(without.disagreements.map(describeLine)).toEqual([expect.stringMatching(/instance-removed-while-working.yaml 3\.15\.0: model: .*ai-proxy-multi\.lua:304: .*\nlua: .*healthcheck_manager\.lua:242: /)]);
    expect(without.unexpected).toHaveLength(1);
    const result = await diff(true);
    expect(result.disagreements).toHaveLength(1);
    expect(result.disagreements[0]!.chance).toBe(PAIRS_ORDER_CHANCE);
    expect(result.unexpected).toEqual([]);
  }, 60_000);

  it("props --diff: a sequence that disagrees by pairs() order is chance, a sabotaged model stays DIFFER", async () => {
    // Sequence 5 of seed 1 on 3.15.0 crashes the working-pool timer on both engines, at the
    // other broken entry first (measured with `props --diff --runs 6 --seed 1 --version 3.15.0`;
    // which sequence it is moves with the workers' heap: see Determinism in the README).
    const lua = luaVersions(["3.15.0"], SOURCES)[0]!;
    const real = getProfile("3.15.0");
    const honest = await diffLifecycle({ model: modelVersion(real), lua, sequences: 6, seed: 1 });
    expect(honest.disagreements.map((d) => [d.index, d.chance])).toEqual([[5, PAIRS_ORDER_CHANCE]]);
    expect(honest.differ).toBe(0);
    const wrong = modelVersion({ ...real, manager: { ...real.manager, lines: { ...real.manager.lines, workingIndex: 243 } } });
    const sabotaged = await diffLifecycle({ model: wrong, lua, sequences: 6, seed: 1 });
    expect(sabotaged.rechecked).toBe(true);
    expect(sabotaged.differ).toBeGreaterThan(0);
    expect(sabotaged.disagreements.filter((d) => !d.chance).map((d) => d.first)).toContainEqual(expect.stringMatching(/healthcheck_manager\.lua:243: /));
  }, 60_000);
});

describe.skipIf(skip)(`harness diff, run as a user would${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const harness = (args: string[]) => execa("node", ["bin/harness.js", ...args], { reject: false, env: { NO_COLOR: "1" } });
  const chanceCase = ["diff", "scenarios/instance-removed-while-working.yaml", "--store", "memory", "--versions", "3.15.0", "--seed", "2"];

  it("labels a pairs()-order disagreement CHANCE, counts it, and exits 0; --no-recheck leaves it DIFFER (exit 1)", async () => {
    const res = await harness(chanceCase);
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/^re-checking 1 disagreement\(s\) with both engines walking tables in key order$/m);
    expect(res.stdout).toMatch(/^1 scenario x version pairs on both engines: 0 agree, 1 disagree: 1 chance \(pairs\(\) order: agree when both walk tables in key order\), 0 DIFFER /);
    expect(res.stdout).toMatch(/^CHANCE 3\.15\.0 /m);
    const raw = await harness([...chanceCase, "--no-recheck"]);
    expect(raw.exitCode).toBe(1);
    expect(raw.stdout).toMatch(/1 disagree: 1 DIFFER \(not re-checked in key order\)/);
    expect(raw.stdout).toMatch(/^DIFFER 3\.15\.0 /m);
  }, 60_000);

  it("--order sorted runs both engines in key order from the start (they agree); a bad --order exits 2", async () => {
    const res = await harness([...chanceCase, "--order", "sorted"]);
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^1 scenario x version pairs on both engines: 1 agree, 0 disagree \(.* s, tables walked in key order\)$/m);
    const bad = await harness([...chanceCase, "--order", "random"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.trim()).toBe('harness: --order: expected hash or sorted, got "random"');
  }, 60_000);
});

describe.skipIf(skip || !hasEtcdBinary())("the model against APISIX's own Lua on real etcd", () => {
  let provisioned: ProvisionedStore;
  beforeAll(async () => {
    provisioned = await acquireStore({ prefer: "etcd", log: () => undefined });
  });
  afterAll(async () => {
    await provisioned?.release();
  });

  it("agree on the etcd scenarios, though each run sees its own revision numbers", async () => {
    const files = ["etcd-compaction-reloads-all", "etcd-restart-resumes-watch", "checker-survives-etcd-restart", "13101-crash-loop-after-patch"];
    const result = await runDiff({
      scenarios: files.map((f) => loadScenario(`scenarios/${f}.yaml`)),
      model: models(),
      lua: luaVersions(names, SOURCES),
      factory: new InprocFactory(storePerRun(provisioned), "etcd"),
      seed: 1,
    });
    expect(result.runs).toHaveLength(files.length * names.length);
    expect(result.disagreements.map(describeLine)).toEqual([]);
  }, 120_000);
});
