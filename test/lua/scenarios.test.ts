import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MemoryStore } from "../../harness/gateway/config/memory-store.ts";
import { luaVersions } from "../../harness/gateway/lua/lua-engine.ts";
import { closeIdleWorkers } from "../../harness/gateway/lua/lua-worker.ts";
import { loadScenario } from "../../harness/runner/load.ts";
import { runSuite } from "../../harness/runner/suite.ts";
import { InprocFactory } from "../../harness/targets/inproc.ts";
import { luaUnavailable, PATCHES, SOURCES } from "../helpers/lua.ts";
import { MISTAKES, STATE_SCENARIO, withMistake } from "../helpers/state-language.ts";

const skip = luaUnavailable();
afterAll(closeIdleWorkers);

describe.skipIf(skip)(`scenarios on APISIX's own Lua${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("the backports of 13322 and 13592 end the crash loop and log what the scenario says", async () => {
    const names = ["3.15.0", "3.16.0", ...["13322", "13592"].flatMap((p) => ["3.15.0", "3.16.0"].map((v) => `${v}+${PATCHES}/${p}.diff`))];
    const suite = await runSuite({
      scenarios: [loadScenario("scenarios/13101-backports.yaml")],
      versions: luaVersions(names, SOURCES),
      factory: new InprocFactory(() => new MemoryStore(), "memory", "simulated"),
      seed: 1,
    });
    expect(suite.runs.map((r) => [r.version.replace(PATCHES + "/", ""), r.outcome, r.failure?.message])).toEqual([
      ["3.15.0", "reproduces", undefined],
      ["3.16.0", "reproduces", undefined],
      ["3.15.0+13322.diff", "passes", undefined],
      ["3.16.0+13322.diff", "passes", undefined],
      ["3.15.0+13592.diff", "passes", undefined],
      ["3.16.0+13592.diff", "passes", undefined],
    ]);
    // The version-specific assertions ran (not skipped) on the patched versions.
    const held = (version: string) => suite.runs.find((r) => r.version === version)!.steps.filter((s) => s.kind === "assert" && !s.summary.includes("skipped")).length;
    expect(held(`3.16.0+${PATCHES}/13322.diff`)).toBe(4);
    expect(held(`3.16.0+${PATCHES}/13592.diff`)).toBe(4);
  });

  it("the scenarios translated from APISIX's ai-proxy-multi TESTs meet their expectations on APISIX's own Lua", async () => {
    // Each uses one of: log_level, admin body checks, received, dns, inject, health, call.
    const files = [
      "admin-rejects-bad-instances",
      "construct-upstream-direct-call",
      "construct-upstream-raises",
      "construct-upstream-returns-nil",
      "dns-order-change-keeps-checker",
      "plugin-removed-releases-checker",
      "probe-carries-instance-auth",
      "stale-picker-after-another-worker-marked-unhealthy",
    ];
    const suite = await runSuite({
      scenarios: files.map((f) => loadScenario(`scenarios/${f}.yaml`)),
      versions: luaVersions(["3.15.0", "3.16.0", "3.17.0", "3.18.0"], SOURCES),
      factory: new InprocFactory(() => new MemoryStore(), "memory"),
      seed: 1,
    });
    expect(suite.runs.filter((r) => !r.met).map((r) => `${r.scenario.file} ${r.version}: ${r.outcome} ${r.failure?.message ?? ""}`)).toEqual([]);
    // Not a suite where everything passes: the releases are told apart.
    const outcomes = (f: string) => suite.runs.filter((r) => r.scenario.file.endsWith(`${f}.yaml`)).map((r) => r.outcome);
    expect(outcomes("stale-picker-after-another-worker-marked-unhealthy")).toEqual(["reproduces", "reproduces", "reproduces", "passes"]);
    expect(outcomes("probe-carries-instance-auth")).toEqual(["passes", "passes", "reproduces", "passes"]);
  }, 60_000);

  it.each(["simulated", "loopback"] as const)("a probe a worker sends while it runs ahead of the harness's clock is stamped with its own time (%s backends)", async (network) => {
    // One wait covers the checker's creation (~1 s) and its first probe (~2 s): the worker runs
    // through both in one go, while the harness's clock still reads the creation time.
    const dir = mkdtempSync(join(tmpdir(), "harness-lua-received-"));
    try {
      const file = join(dir, "received.yaml");
      writeFileSync(
        file,
        `name: probe time
backends:
  a: {hosts: [a.test]}
steps:
  - admin: {method: PUT, path: /apisix/admin/routes/1, fixture: routes/checked-and-plain.json}
  - mark: put
  - request: {path: /ai/chat/completions, fixture: chat.json, status: 200}
  - wait: 3s
  - assert: {received: {kind: probe, since: put, within: 1500ms, absent: true}}
  - assert: {received: {kind: probe, since: put, count: 1}}
expect: {default: passes}
`,
      );
      const suite = await runSuite({ scenarios: [loadScenario(file)], versions: luaVersions(["3.15.0"], SOURCES), factory: new InprocFactory(() => new MemoryStore(), "memory", network), seed: 1 });
      expect(suite.runs.map((r) => [r.outcome, r.failure?.message])).toEqual([["passes", undefined]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe("tick steps, checker identity and targets, pool versions, per-tick counts", () => {
    const dir = mkdtempSync(join(tmpdir(), "harness-lua-state-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    async function run(name: string, text: string, on: string[]) {
      const file = join(dir, name);
      writeFileSync(file, text);
      const suite = await runSuite({ scenarios: [loadScenario(file)], versions: luaVersions(on, SOURCES), factory: new InprocFactory(() => new MemoryStore(), "memory", "simulated"), seed: 1 });
      return suite.runs;
    }

    it("hold on every release as written", async () => {
      const versions = ["3.15.0", "3.16.0", "3.17.0", "3.18.0"];
      const runs = await run("state.yaml", STATE_SCENARIO, versions);
      expect(runs.map((r) => [r.version, r.outcome, r.failure?.message])).toEqual(versions.map((v) => [v, "passes", undefined]));
      const judged = (v: string) => runs.find((r) => r.version === v)!.steps.filter((s) => s.kind === "assert" && !s.summary.includes("skipped")).length;
      expect([judged("3.15.0"), judged("3.17.0"), judged("3.18.0")]).toEqual([3, 2, 3]);
    }, 60_000);

    it.each(MISTAKES)("catch a wrong claim: $name", async (m) => {
      const [r] = await run(`mistake-${MISTAKES.indexOf(m)}.yaml`, withMistake(m), [m.version]);
      expect(r!.outcome).toBe("error");
      expect(r!.failure?.message).toMatch(m.message);
    });
  });
});
