import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MemoryStore } from "../../harness/gateway/config/memory-store.ts";
import { modelVersion } from "../../harness/gateway/model-engine.ts";
import { getProfile } from "../../harness/gateway/versions/index.ts";
import { identityProblem, isCurrentVersion, linesPerTick, perTickProblem, poolVersionProblem, targetsProblem } from "../../harness/runner/checks.ts";
import { loadScenario } from "../../harness/runner/load.ts";
import { runSuite } from "../../harness/runner/suite.ts";
import { HttpTarget } from "../../harness/targets/http-target.ts";
import { InprocFactory } from "../../harness/targets/inproc.ts";
import { TargetUnsupported } from "../../harness/targets/target.ts";
import { MISTAKES, STATE_SCENARIO, withMistake } from "../helpers/state-language.ts";

const dir = mkdtempSync(join(tmpdir(), "harness-state-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function node(ip: string, port: number, hostname?: string) {
  return { ip, port, status: "healthy", counter: {}, ...(hostname !== undefined ? { hostname } : {}) };
}

function target(text: string, ip: string, port: number, hostname?: string) {
  return { node: ip, ip, port, text, ...(hostname !== undefined ? { hostname } : {}) };
}

describe("checker identity", () => {
  it("kept holds only for the same checker, rebuilt only for another, and neither without one at the mark", () => {
    expect(identityProblem("kept", "m", "checker#1", "checker#1")).toBeUndefined();
    expect(identityProblem("kept", "m", "checker#1", "checker#2")).toBe("checker checker#2 is not the one at mark m (checker#1): it was rebuilt");
    expect(identityProblem("rebuilt", "m", "checker#1", "checker#2")).toBeUndefined();
    expect(identityProblem("rebuilt", "m", "checker@0x7f00", "checker@0x7f00")).toBe("checker checker@0x7f00 is still the one at mark m: it was kept");
    // A table at a reused address is another checker (world.lua numbers it).
    expect(identityProblem("kept", "m", "checker@0x7f00", "checker@0x7f00#2")).toMatch(/it was rebuilt/);
    expect(identityProblem("rebuilt", "m", undefined, "checker#3")).toBe("had no working checker at mark m, so it was neither kept nor rebuilt since (now checker#3)");
  });
});

describe("checker targets", () => {
  it("are compared as a set, with hostnames where the scenario gives them", () => {
    const nodes = [node("127.0.0.12", 80, "x.test"), node("127.0.0.11", 80, "x.test")];
    expect(targetsProblem([target("127.0.0.11:80", "127.0.0.11", 80), target("127.0.0.12:80", "127.0.0.12", 80)], nodes)).toBeUndefined();
    expect(targetsProblem([target("x.test(127.0.0.11:80)", "127.0.0.11", 80, "x.test"), target("127.0.0.12:80", "127.0.0.12", 80)], nodes)).toBeUndefined();
    expect(targetsProblem([target("127.0.0.11:80", "127.0.0.11", 80)], nodes)).toBe("probes [x.test(127.0.0.12:80), x.test(127.0.0.11:80)]: also probes x.test(127.0.0.12:80)");
    expect(targetsProblem([target("127.0.0.11:80", "127.0.0.11", 80), target("127.0.0.12:81", "127.0.0.12", 81)], nodes)).toMatch(/: lacks 127\.0\.0\.12:81; also probes x\.test\(127\.0\.0\.12:80\)$/);
    expect(targetsProblem([target("y.test(127.0.0.11:80)", "127.0.0.11", 80, "y.test"), target("127.0.0.12:80", "127.0.0.12", 80)], nodes)).toMatch(/lacks y\.test\(127\.0\.0\.11:80\); also probes x\.test\(127\.0\.0\.11:80\)/);
    expect(targetsProblem([target("127.0.0.11:80", "127.0.0.11", 80), target("127.0.0.11:80", "127.0.0.11", 80)], [node("127.0.0.11", 80)])).toMatch(/lacks 127\.0\.0\.11:80$/);
  });

  it("a named entry takes its node before an unnamed one can, whatever the order written", () => {
    const nodes = [node("127.0.0.11", 80, "a.test"), node("127.0.0.11", 80, "b.test")];
    const wanted = [target("127.0.0.11:80", "127.0.0.11", 80), target("a.test(127.0.0.11:80)", "127.0.0.11", 80, "a.test")];
    expect(targetsProblem(wanted, nodes)).toBeUndefined();
    expect(targetsProblem([...wanted].reverse(), nodes)).toBeUndefined();
  });
});

describe("pool versions", () => {
  it("current is the route's modifiedIndex, with or without a nodes version after it", () => {
    expect(isCurrentVersion("21", "21")).toBe(true);
    expect(isCurrentVersion("212", "21")).toBe(true);
    expect(isCurrentVersion("2", "21")).toBe(false);
    expect(isCurrentVersion("21", undefined)).toBe(false);
    expect(poolVersionProblem({ kind: "current" }, "14", "21")).toBe("at version 14, not the current one (the route's modifiedIndex is 21)");
    expect(poolVersionProblem({ kind: "stale" }, "14", "21")).toBeUndefined();
    expect(poolVersionProblem({ kind: "stale" }, "21", "21")).toBe("at version 21, the current one (the route's modifiedIndex is 21), expected a stale one");
    expect(poolVersionProblem({ kind: "stale" }, "21", undefined)).toBeUndefined();
    expect(poolVersionProblem({ kind: "exactly", version: "21" }, "21", undefined)).toBeUndefined();
    expect(poolVersionProblem({ kind: "exactly", version: "21" }, "211", undefined)).toBe("at version 211, expected 21");
  });
});

describe("per-tick counts", () => {
  it("give each tick the lines from its time up to the next tick's, and name the ticks that are off", () => {
    const counts = linesPerTick([2000, 3000, 4000], [1500, 2000, 3000, 3999, 4000, 4700]);
    expect(counts).toEqual([
      { at: 2000, lines: 1 },
      { at: 3000, lines: 2 },
      { at: 4000, lines: 2 },
    ]);
    expect(perTickProblem(counts, 1, 1000)).toBe("2 of 3 tick(s) had another count than 1: tick at 2000 ms had 2, tick at 3000 ms had 2");
    expect(perTickProblem(linesPerTick([2000, 3000], [2000, 3000]), 1, 0)).toBeUndefined();
    expect(perTickProblem([], 1, 0)).toBe("no health-check manager tick in the window");
  });
});

describe("the state assertions and tick steps in a run (model engine)", () => {
  const versions = ["3.15.0", "3.16.0", "3.17.0", "3.18.0"];

  async function run(name: string, text: string, on: string[]) {
    const file = join(dir, name);
    writeFileSync(file, text);
    const suite = await runSuite({ scenarios: [loadScenario(file)], versions: on.map((v) => modelVersion(getProfile(v))), factory: new InprocFactory(() => new MemoryStore(), "memory", "simulated"), seed: 1 });
    return suite.runs;
  }

  it("hold on every release as written", async () => {
    const runs = await run("state.yaml", STATE_SCENARIO, versions);
    expect(runs.map((r) => [r.version, r.outcome, r.failure?.message])).toEqual(versions.map((v) => [v, "passes", undefined]));
    // The version-specific assertions were judged, not skipped.
    const judged = (v: string) => runs.find((r) => r.version === v)!.steps.filter((s) => s.kind === "assert" && !s.summary.includes("skipped")).length;
    expect([judged("3.15.0"), judged("3.17.0"), judged("3.18.0")]).toEqual([3, 2, 3]);
    const tick = runs[0]!.steps.filter((s) => s.kind === "tick").map((s) => [s.atMs, s.summary]);
    expect(tick).toEqual([
      [0, "tick: waited 999 ms, to 1 ms before the next manager tick (at 1000 ms)"],
      [999, "tick: waited 1 ms, to 0 ms after the next manager tick (at 1000 ms)"],
      [1000, "tick: waited 3001 ms, to 1 ms after manager tick 3 from here (at 4000 ms)"],
    ]);
  });

  it.each(MISTAKES)("catch a wrong claim: $name", async (m) => {
    const [r] = await run(`mistake-${MISTAKES.indexOf(m)}.yaml`, withMistake(m), [m.version]);
    expect(r!.outcome).toBe("error");
    expect(r!.failure?.message).toMatch(m.message);
  });

  it("a tick cannot stop before a tick it is already past", async () => {
    const [r] = await run("tick-past.yaml", "name: past\nsteps:\n  - wait: 998ms\n  - tick: {before: 5ms}\nexpect: {default: passes}\n", ["3.18.0"]);
    expect(r!.failure?.message).toBe("line 4: tick: cannot stop 5 ms before the next manager tick (at 1000 ms): the clock is already at 998 ms");
  });
});

describe("on a target without a virtual clock or the harness's control API", () => {
  it("a tick step is not available, and names are not resolved", async () => {
    const t = new HttpTarget({ kind: "external", adminUrl: "http://127.0.0.1:1", gatewayUrl: "http://127.0.0.1:1", controlUrl: "http://127.0.0.1:1", apiKey: "k", harnessControl: false });
    const tick = await t.nextTick().catch((e: unknown) => e);
    expect(tick).toBeInstanceOf(TargetUnsupported);
    expect((tick as Error).message).toBe("tick steps are not available on the external target: stopping just before or after a manager tick needs the in-process target's virtual clock");
    expect(await t.addressOf("127.0.0.9")).toBe("127.0.0.9");
    await expect(t.addressOf("a.test")).rejects.toBeInstanceOf(TargetUnsupported);
  });
});
