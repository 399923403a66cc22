/**
 * A scenario a target cannot run at all (tick steps on a real-time target) is skipped, with the
 * reason: no target is made for it, it counts as neither passed nor failed, the suite stays ok,
 * and every report says so.
 */
import { XMLParser } from "fast-xml-parser";
import { describe, expect, it } from "vitest";
import { modelVersion } from "../../harness/gateway/model-engine.ts";
import { getProfile } from "../../harness/gateway/versions/index.ts";
import { progressLine, summaryText } from "../../harness/report/console.ts";
import { htmlReport } from "../../harness/report/html/index.ts";
import { junitXml } from "../../harness/report/junit.ts";
import { markdownMatrix } from "../../harness/report/markdown.ts";
import { loadScenario } from "../../harness/runner/load.ts";
import { runCount } from "../../harness/runner/result.ts";
import { runSuite, type TargetFactory } from "../../harness/runner/suite.ts";
import { InprocFactory } from "../../harness/targets/inproc.ts";
import { MemoryStore } from "../../harness/gateway/config/memory-store.ts";

const ticking = loadScenario("scenarios/checks-only-change.yaml");
const plain = loadScenario("scenarios/backend-down-skipped.yaml");
const versions = [modelVersion(getProfile("3.18.0"))];

/** An in-process factory that says it runs on real time (as serve and external do), counting what it makes. */
function realTimeFactory(): TargetFactory & { made: number } {
  const inner = new InprocFactory(() => new MemoryStore(), "memory");
  const f = {
    name: "serve",
    store: "memory",
    realTime: true,
    made: 0,
    create: (world: Parameters<TargetFactory["create"]>[0], version: Parameters<TargetFactory["create"]>[1], runId: number, seed: number) => {
      f.made += 1;
      return inner.create(world, version, runId, seed);
    },
  };
  return f;
}

describe("a scenario the target cannot run", () => {
  it("is skipped with the reason, without making a target; the others run; the suite is ok", async () => {
    const factory = realTimeFactory();
    const suite = await runSuite({ scenarios: [ticking, plain], versions, factory, seed: 1 });
    const [skipped, ran] = suite.runs;
    expect(skipped).toMatchObject({ outcome: "skipped", met: false, steps: [] });
    expect(skipped!.skipped).toMatch(/^tick steps \(line \d+\) need the in-process target's virtual clock; the serve target runs on real time$/);
    expect(runCount(skipped!)).toBe("skipped");
    expect(runCount(ran!)).toBe("passed");
    expect(factory.made).toBe(1);
    expect(suite.ok).toBe(true);
  });

  it("runs on the in-process target (virtual clock)", async () => {
    const suite = await runSuite({ scenarios: [ticking], versions, factory: new InprocFactory(() => new MemoryStore(), "memory"), seed: 1 });
    expect(suite.runs[0]!.outcome).not.toBe("skipped");
    expect(suite.ok).toBe(true);
  });

  it("shows as skipped in every report, and a failure elsewhere still fails the suite", async () => {
    const suite = await runSuite({ scenarios: [ticking, plain], versions, factory: realTimeFactory(), seed: 1 });
    const [skipped] = suite.runs;
    expect(progressLine(skipped!, 1, 2)).toMatch(/^\[1\/2\] skip  3\.18\.0  skipped .* — tick steps \(line \d+\)/);
    const summary = summaryText(suite).split("\n");
    expect(summary).toContain("1 passed, 0 failed, 1 skipped");
    expect(summary.some((l) => /^ {2}SKIP 3\.18\.0 {2}a change of the checks only \(scenarios\/checks-only-change\.yaml\): tick steps/.test(l))).toBe(true);
    expect(summary.some((l) => l.startsWith("  FAIL"))).toBe(false);

    const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "" }).parse(junitXml(suite)) as { testsuites: { skipped: string; failures: string } };
    expect(xml.testsuites).toMatchObject({ skipped: "1", failures: "0" });

    const md = markdownMatrix(suite);
    expect(md).toContain("**1 passed, 0 failed, 1 skipped**");
    expect(md).toMatch(/\| a change of the checks only \| ⏭️ skipped \|/);
    expect(md).toMatch(/### Skipped\n\n- \*\*a change of the checks only\*\* on 3\.18\.0/);
    expect(md).not.toContain("### Failures");

    expect(htmlReport(suite)).toContain("1 passed, 0 failed, 1 skipped");

    const failing = { ...suite, runs: [...suite.runs, { ...suite.runs[1]!, met: false, outcome: "error" as const }] };
    expect(summaryText(failing).split("\n")).toContain("1 passed, 1 failed, 1 skipped");
  });
});
