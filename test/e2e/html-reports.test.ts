import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { propsHtml, runProps } from "../../harness/cli/props.ts";
import { modelVersion } from "../../harness/gateway/model-engine.ts";
import { getProfile } from "../../harness/gateway/versions/index.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const out = mkdtempSync(join(tmpdir(), "harness-html-cmds-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

interface PageRun {
  scenario: number;
  column: string;
  outcome: string;
  met: boolean;
  lanes: { clock: string; lanes: string[]; points: number[]; styles?: never };
}

function pageData(file: string): { runs: PageRun[]; styles: string[]; scenarios: { name: string }[] } {
  const html = readFileSync(file, "utf8");
  return JSON.parse(/<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html)![1]!) as { runs: PageRun[]; styles: string[]; scenarios: { name: string }[] };
}

/** Times of the points of one style in a run. */
function times(page: ReturnType<typeof pageData>, run: PageRun, style: string): number[] {
  const s = page.styles.indexOf(style);
  const out: number[] = [];
  for (let k = 0; k < run.lanes.points.length; k += 4) if (run.lanes.points[k + 2] === s) out.push(run.lanes.points[k]!);
  return out;
}

describe("--reporter html on repro and props", () => {
  it("harness repro --reporter html: one run per version with its recorded timeline; the JSON record stays without it", async () => {
    const dir = join(out, "repro");
    const res = await execa("node", ["bin/harness.js", "repro", "--store", "memory", "--reporter", "html", "--out", dir], { cwd: ROOT, reject: false });
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toBe("");
    const page = pageData(join(dir, "repro-13101.html"));
    expect(page.runs.map((r) => [r.column, r.outcome, r.met, r.lanes.clock])).toEqual([
      ["3.15.0", "reproduces", true, "virtual"],
      ["3.16.0", "reproduces", true, "virtual"],
      ["3.17.0", "passes", true, "virtual"],
      ["3.18.0", "passes", true, "virtual"],
    ]);
    expect(times(page, page.runs[0]!, "error")).toEqual([3000, 4000, 5000]);
    expect(times(page, page.runs[3]!, "error")).toEqual([]);
    const record = res.stderr.split("\n").find((l) => l.startsWith("record: "))!.slice(8);
    expect(readFileSync(record, "utf8")).not.toContain('"timeline"');
  });

  it("harness repro --reporter with an unknown name is bad usage", async () => {
    const res = await execa("node", ["bin/harness.js", "repro", "--reporter", "pdf"], { cwd: ROOT, reject: false });
    expect(res.exitCode).toBe(2);
    expect(res.stderr).toContain('--reporter: expected table and/or html, got "pdf"');
  });

  it("props: the lifecycle counterexample of 3.15.0 replayed on each profile of the run, with its crash on the timeline", async () => {
    const profiles = [modelVersion(getProfile("3.15.0")), modelVersion(getProfile("3.18.0"))];
    const rows = await runProps({ versions: profiles, properties: ["lifecycle"], runs: 100, seed: 7, out, progress: () => undefined });
    expect(rows.map((r) => [r.profile, r.holds])).toEqual([
      ["3.15.0", false],
      ["3.18.0", true],
    ]);
    const page = pageData(await propsHtml(rows, ["lifecycle"], profiles, out));
    expect(page.scenarios.map((s) => s.name)).toEqual(["lifecycle counterexample on 3.15.0 (seed 7)"]);
    const [on315, on318] = page.runs;
    expect([on315!.column, on315!.outcome, on318!.column, on318!.outcome]).toEqual(["3.15.0", "reproduces", "3.18.0", "passes"]);
    expect(times(page, on315!, "tick failed").length).toBeGreaterThan(0);
    expect(times(page, on318!, "tick failed")).toEqual([]);
  });
});
