import { describe, expect, it } from "vitest";
import type { TraceEvent } from "../../harness/gateway/trace.ts";
import { htmlReport } from "../../harness/report/html/index.ts";
import { resourceLabel, runLanes, STYLES, type LaneModel } from "../../harness/report/html/lanes.ts";
import type { RunResult } from "../../harness/runner/result.ts";
import { fixtureRuns, fixtureSuite } from "./fixture.ts";

const R0 = "/apisix-x-1/routes/1#plugins['ai-proxy-multi'].instances[0]";

/** Points of a lane model as readable tuples: [time, lane key, style, detail]. */
function points(m: LaneModel): [number, string, string, string][] {
  const out: [number, string, string, string][] = [];
  for (let k = 0; k < m.points.length; k += 4) out.push([m.points[k]!, m.lanes[m.points[k + 1]!]!, STYLES[m.points[k + 2]!]!, m.details[m.points[k + 3]!]!]);
  return out;
}

function withTimeline(events: TraceEvent[]): RunResult {
  const run = structuredClone(fixtureRuns()[0]!);
  run.timeline = { clock: "virtual", origin: 0, events };
  return run;
}


describe("timeline lanes of a run", () => {
  it("without a recorded timeline, draws the run's steps and marks its bug assertion", () => {
    const m = runLanes(fixtureRuns()[0]!);
    expect(m.clock).toBe("steps");
    expect(points(m).map(([t, lane, style]) => [t, lane, style])).toEqual([
      [0, "admin", "admin"],
      [1000, "admin", "admin"],
      [4000, "assert", "bug assertion held"],
    ]);
  });

  it("a failed plain assertion is marked as failed, at its time", () => {
    const m = runLanes(fixtureRuns()[1]!);
    expect(points(m).find(([, lane]) => lane === "assert")!.slice(0, 3)).toEqual([4000, "assert", "assertion failed"]);
  });

  it("orders lanes by kind, leaves out the runner's own reads, and numbers checkers per run", () => {
    const m = runLanes(
      withTimeline([
        { lane: "log", t: 3000, level: "error", text: "boom" },
        { lane: "checker", t: 1000, action: "created", checker: "checker#41", resource: R0, version: "21" },
        { lane: "admin", t: 0, method: "PUT", path: "/apisix/admin/routes/1", status: 201 },
        { lane: "admin", t: 2000, method: "GET", path: "/apisix/admin/routes/1", status: 200 },
        { lane: "request", t: 0, method: "POST", path: "/ai/chat/completions", status: 200, instance: "a" },
        { lane: "tick", t: 1000, timer: "working", ok: false, error: "attempt to index local 'upstream' (a nil value)", pools: { waiting: {}, working: { [R0]: { version: "21", checker: "checker#41" } } } },
        { lane: "log", t: 3500, level: "info", text: "not drawn" },
      ]),
    );
    expect(m.lanes).toEqual(["admin", "request", "assert", "tick working", "checker · route 1 instances[0]", "log"]);
    const p = points(m);
    expect(p.filter(([, lane]) => lane === "admin").map(([t]) => t)).toEqual([0]);
    expect(p.find(([, lane]) => lane === "request")![3]).toBe("POST /ai/chat/completions -> 200 answered by instance a");
    expect(p.find(([, lane]) => lane === "tick working")![3]).toBe("timer_working_pool_check failed: attempt to index local 'upstream' (a nil value)\nwaiting pool (0):\nworking pool (1):\n  route 1 instances[0]: checker #1 at version 21");
    expect(p.filter(([, lane]) => lane === "log").map(([, , style, d]) => [style, d])).toEqual([["error", "boom"]]);
  });

  it("draws a checker's lifetime from created to destroyed, and a rebuild closes the one it replaced", () => {
    const m = runLanes(
      withTimeline([
        { lane: "checker", t: 1000, action: "created", checker: "c1", resource: R0 },
        { lane: "checker", t: 3000, action: "rebuilt", checker: "c2", resource: R0, previous: "c1" },
        { lane: "checker", t: 5000, action: "destroyed", checker: "c2", resource: R0 },
        { lane: "checker", t: 6000, action: "created", checker: "c3", resource: R0 },
        { lane: "log", t: 9000, level: "warn", text: "w" },
      ]),
    );
    const spans: [number, number, string][] = [];
    for (let k = 0; k < m.spans.length; k += 4) spans.push([m.spans[k]!, m.spans[k + 1]!, m.details[m.spans[k + 3]!]!]);
    expect(spans).toEqual([
      [1000, 3000, "checker #1 for route 1 instances[0]: from 1 s to 3 s (replaced by checker #2)"],
      [3000, 5000, "checker #2 for route 1 instances[0]: from 3 s to 5 s (destroyed)"],
      [6000, 9000, "checker #3 for route 1 instances[0]: from 6 s to 9 s (still working at the end)"],
    ]);
  });

  it("one lane per probed address, and texts that repeat are kept once", () => {
    const events: TraceEvent[] = [];
    for (let t = 0; t < 600_000; t += 1000) events.push({ lane: "probe", t, checker: "c1", target: "api.openai.com(127.0.0.2:443)", result: "200", ok: true });
    events.push({ lane: "probe", t: 1, checker: "c2", target: "127.0.0.2:443", result: "refused", ok: false });
    const m = runLanes(withTimeline(events));
    expect(m.lanes.filter((l) => l.startsWith("target"))).toEqual(["target · 127.0.0.2:443"]);
    // 600 probes of one address, one of the same address by another name, and the run's bug assertion.
    expect(m.points.length / 4).toBe(602);
    expect(m.details.length).toBeLessThan(10);
  });

  it("events of several workers go to a lane per worker", () => {
    const m = runLanes(
      withTimeline([
        { lane: "request", t: 0, method: "POST", path: "/ai", status: 200, worker: 0 },
        { lane: "request", t: 1, method: "POST", path: "/ai", status: 200, worker: 1 },
        { lane: "tick", t: 1000, timer: "working", ok: false, error: "x", pools: { waiting: {}, working: {} }, worker: 1 },
      ]),
    );
    expect(m.lanes).toEqual(["request · worker 0", "request · worker 1", "assert", "tick working · worker 1"]);
  });

  it("resource paths read as route and instance", () => {
    expect(resourceLabel(R0)).toBe("route 1 instances[0]");
    expect(resourceLabel("/apisix/upstreams/3")).toBe("upstreams/3");
  });
});

describe("the page", () => {
  it("is self-contained: no external script, style, image or link", () => {
    // Script bodies (the library, the data) are code and data, not references; the markup is checked.
    const html = htmlReport(fixtureSuite()).replace(/<script([^>]*)>[\s\S]*?<\/script>/g, "<script$1></script>");
    expect(html.match(/<script/g)).toHaveLength(3);
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).not.toMatch(/<link[^>]+href=/);
    expect(html).not.toMatch(/<img[^>]+src=/);
    expect(html).not.toMatch(/url\(\s*['"]?https?:/);
  });

  it("a log line that contains </script> cannot end the data block early", () => {
    const run = withTimeline([{ lane: "log", t: 1, level: "error", text: "</script><script>alert(1)</script>" }]);
    const suite = { ...fixtureSuite(), runs: [run] };
    const html = htmlReport(suite);
    const data = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html)![1]!;
    const parsed = JSON.parse(data) as { runs: { lanes: LaneModel }[] };
    expect(parsed.runs[0]!.lanes.details).toContain("</script><script>alert(1)</script>");
  });

  it("columns are version x engine only when runs of two engines are present", () => {
    const suite = fixtureSuite();
    const one = JSON.parse(/id="report-data">([\s\S]*?)<\/script>/.exec(htmlReport(suite))![1]!) as { columns: string[] };
    expect(one.columns).toEqual(suite.versions);
    const lua = { ...structuredClone(suite.runs[0]!), engine: "lua" };
    const two = JSON.parse(/id="report-data">([\s\S]*?)<\/script>/.exec(htmlReport({ ...suite, runs: [...suite.runs, lua] }))![1]!) as { columns: string[] };
    expect(two.columns).toContain(`${lua.version} · lua`);
    expect(two.columns).toContain(`${lua.version} · model`);
  });
});
