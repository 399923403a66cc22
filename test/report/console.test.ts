import { describe, expect, it } from "vitest";
import { progressLine, summaryText } from "../../harness/report/console.ts";
import { fixtureRuns, fixtureSuite } from "./fixture.ts";

describe("progressLine", () => {
  const runs = fixtureRuns();

  it("a run that met its expectation: ok, version, outcome and expectation, short issue, name, time", () => {
    expect(progressLine(runs[0]!, 1, 4)).toBe("[1/4] ok    3.15.0  reproduces (expected reproduces)  #13101 crash loop after PATCH  (412 ms)");
  });

  it("pads the index to the width of the total", () => {
    expect(progressLine(runs[0]!, 3, 32)).toBe("[ 3/32] ok    3.15.0  reproduces (expected reproduces)  #13101 crash loop after PATCH  (412 ms)");
  });

  it("a run that did not: FAIL, and the failing step with its message", () => {
    expect(progressLine(runs[1]!, 2, 4)).toBe(
      "[2/4] FAIL  3.17.0  reproduces (expected passes)      #13101 crash loop after PATCH  (398 ms)" +
        " — step 2 (assert): bug signature held: 7 checker failures after PATCH, expected none",
    );
  });

  it("an error outcome, for a scenario without an issue", () => {
    expect(progressLine(runs[2]!, 3, 4)).toBe(
      "[3/4] FAIL  3.17.0  error (expected passes)           health check survives etcd restart  (1003 ms)" +
        " — step 1 (etcd): etcd did not come back within 5000 ms",
    );
  });

  it("a failing run without a recorded failure step, and a multi-line message folded onto the line", () => {
    const noFailure = { ...runs[1]!, failure: undefined };
    expect(progressLine(noFailure, 2, 4)).toBe("[2/4] FAIL  3.17.0  reproduces (expected passes)      #13101 crash loop after PATCH  (398 ms)");
    const multiLine = { ...runs[2]!, failure: { step: 1, kind: "etcd", message: "etcd did not come back\n  last error: connection refused" } };
    expect(progressLine(multiLine, 3, 4)).toMatch(/ — step 1 \(etcd\): etcd did not come back last error: connection refused$/);
    expect(progressLine(multiLine, 3, 4)).not.toContain("\n");
  });
});

describe("summaryText", () => {
  it("counts, the CI line on its own, then one line per failing run", () => {
    expect(summaryText(fixtureSuite())).toBe(
      [
        "4 runs of 2 scenarios on 2 versions (target inproc, store memory, seed 42) in 1.9 s",
        "2 passed, 2 failed",
        "  FAIL 3.17.0  #13101 crash loop after PATCH (scenarios/13101-crash-loop.yaml): reproduces (expected passes)" +
          " — step 2 (assert): bug signature held: 7 checker failures after PATCH, expected none",
        "  FAIL 3.17.0  health check survives etcd restart (scenarios/etcd-restart.yaml): error (expected passes)" +
          " — step 1 (etcd): etcd did not come back within 5000 ms",
      ].join("\n"),
    );
  });

  it("the `N passed, M failed` line is a whole line, as CI greps it", () => {
    const lines = summaryText(fixtureSuite()).split("\n");
    expect(lines.filter((l) => /^\d+ passed, \d+ failed$/.test(l))).toEqual(["2 passed, 2 failed"]);
  });

  it("with every run met: no failure lines", () => {
    const met = fixtureRuns().filter((r) => r.met);
    const lines = summaryText(fixtureSuite(met)).split("\n");
    expect(lines).toEqual(["2 runs of 2 scenarios on 2 versions (target inproc, store memory, seed 42) in 1.9 s", "2 passed, 0 failed"]);
  });
});
