/**
 * The HTML report in a real browser: headless Chromium (the system's, driven by playwright-core)
 * opens the page written by `harness run --reporter html` from a file:// URL, with every other
 * request aborted and recorded.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SuiteResult } from "../../harness/runner/result.ts";
import { chromiumPath, openPage, type OpenedPage } from "../helpers/browser.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const out = process.env.KEEP_HTML_REPORT ?? mkdtempSync(join(tmpdir(), "harness-html-"));
afterAll(() => {
  if (!process.env.KEEP_HTML_REPORT) rmSync(out, { recursive: true, force: true });
});

/** What the page's canvas holds for one series, read through ECharts' own model. */
interface SeriesView {
  rows: string[];
  points: { t: number; row: string; px: number }[];
}

declare global {
  interface Window {
    harnessReport: { rendered: string | null; rows: string[]; chart(): { getOption(): { series: { id?: string; data: unknown[] }[] }; convertToPixel(finder: unknown, value: number[]): number[] } };
  }
}

async function show(p: OpenedPage, hash: string): Promise<void> {
  await p.page.evaluate((h) => (location.hash = h), hash);
  await p.page.waitForFunction((h) => window.harnessReport?.rendered === h, hash);
}

async function series(p: OpenedPage, id: string): Promise<SeriesView> {
  return p.page.evaluate((sid) => {
    const r = window.harnessReport;
    const chart = r.chart();
    const s = chart.getOption().series.find((x) => x.id === sid);
    const data = (s?.data ?? []) as number[][];
    return { rows: r.rows, points: data.map((d) => ({ t: d[0]!, row: r.rows[d[1]!]!, px: chart.convertToPixel({ xAxisIndex: 0, yAxisIndex: 0 }, [d[0]!, d[1]!])[0]! })) };
  }, id);
}

// Skipped only outside CI: .ci/run installs Chromium, so there a missing browser fails.
describe.skipIf(!chromiumPath() && !process.env.CI)("HTML report in headless Chromium", () => {
  let suite: SuiteResult;
  let p: OpenedPage;
  const runIndex = (file: string, version: string) => suite.runs.findIndex((r) => r.scenario.file.endsWith(file) && r.version === version);

  beforeAll(async () => {
    const res = await execa(
      "node",
      ["bin/harness.js", "run", "scenarios/13101-crash-loop-after-patch.yaml", "scenarios/instance-removed-while-working.yaml", "--versions", "all", "--store", "memory", "--reporter", "html,json", "--out", out],
      { cwd: ROOT, reject: false, env: { GITHUB_STEP_SUMMARY: "" } },
    );
    expect(res.exitCode, res.stderr).toBe(0);
    suite = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as SuiteResult;
    p = await openPage(pathToFileURL(join(out, "report.html")).href);
    await p.page.goto(pathToFileURL(join(out, "report.html")).href);
    await p.page.waitForFunction(() => window.harnessReport?.rendered);
  }, 60_000);
  afterAll(async () => p?.close());

  it("loads with no console error and asks nothing of the network", () => {
    expect(p.errors).toEqual([]);
    expect(p.requests).toEqual([]);
  });

  it("the matrix shows every run's verdict in its scenario x version cell, coloured by whether it met its expectation", async () => {
    const cells = await p.page.$$eval("td.cell", (tds) => tds.map((td) => ({ scenario: td.getAttribute("data-scenario"), column: td.getAttribute("data-column"), text: td.querySelector("a")!.textContent, cls: td.className })));
    expect(cells).toHaveLength(suite.runs.length);
    for (const run of suite.runs) {
      const cell = cells.find((c) => c.scenario === run.scenario.file && c.column === run.version);
      expect(cell, `${run.scenario.file} ${run.version}`).toBeDefined();
      expect(cell!.text).toBe(run.outcome);
      expect(cell!.cls.split(" ")).toContain(run.met ? "met" : "unmet");
    }
    // The catalogue's known verdicts, so a page showing the same wrong thing everywhere fails.
    const outcomes = suite.runs.filter((r) => r.scenario.file.includes("13101")).map((r) => `${r.version}:${r.outcome}`);
    expect(outcomes).toEqual(["3.15.0:reproduces", "3.16.0:reproduces", "3.17.0:passes", "3.18.0:passes"]);
  });

  it("the 3.15.0 timeline of #13101 shows one error mark per second after the PATCH, at distinct places on the axis", async () => {
    await show(p, `run=${runIndex("13101-crash-loop-after-patch.yaml", "3.15.0")}`);
    const admin = await series(p, "admin");
    const patchAt = suite.runs[runIndex("13101-crash-loop-after-patch.yaml", "3.15.0")]!.steps.find((s) => s.summary.startsWith("PATCH"))!.atMs;
    expect(admin.points.map((x) => x.t)).toContain(patchAt);
    const errors = await series(p, "error");
    expect(errors.points.every((e) => e.row === "log")).toBe(true);
    const after = errors.points.filter((e) => e.t > patchAt);
    expect(after.length).toBeGreaterThanOrEqual(2);
    expect(after.length).toBe(errors.points.length);
    const gaps = after.slice(1).map((e, i) => e.t - after[i]!.t);
    expect(gaps.every((g) => g === 1000)).toBe(true);
    // Drawn left to right, evenly spaced, right of the PATCH mark.
    const patchPx = admin.points.find((x) => x.t === patchAt)!.px;
    const pxGaps = after.slice(1).map((e, i) => e.px - after[i]!.px);
    expect(after[0]!.px).toBeGreaterThan(patchPx);
    expect(Math.max(...pxGaps) - Math.min(...pxGaps)).toBeLessThan(2);
    expect(Math.min(...pxGaps)).toBeGreaterThan(10);
    // Hovering shows the line's full text.
    const box = await p.page.locator("#chart canvas").first().boundingBox();
    const at = await p.page.evaluate(() => {
      const r = window.harnessReport;
      const s = r.chart().getOption().series.find((x) => x.id === "error")!;
      const d = s.data[0] as number[];
      return r.chart().convertToPixel({ xAxisIndex: 0, yAxisIndex: 0 }, [d[0]!, d[1]!]);
    });
    await p.page.mouse.click(box!.x + at[0]!, box!.y + at[1]!);
    await expect.poll(() => p.page.textContent("#detail")).toContain("healthcheck_manager.lua:292: failed to run timer_working_pool_check");
  });

  it("compares 3.15.0 and 3.18.0 on one axis: errors on 3.15.0's log lane, none on 3.18.0's; a PNG goes next to the report", async () => {
    const a = runIndex("13101-crash-loop-after-patch.yaml", "3.15.0");
    const b = runIndex("13101-crash-loop-after-patch.yaml", "3.18.0");
    await show(p, `cmp=${a},${b}`);
    const errors = await series(p, "error");
    expect(errors.rows).toContain("3.15.0 │ log");
    expect(errors.rows).toContain("3.18.0 │ log");
    expect(errors.points.length).toBeGreaterThanOrEqual(2);
    expect(errors.points.every((e) => e.row === "3.15.0 │ log")).toBe(true);
    // 3.18.0 keeps both checkers through the PATCH; 3.15.0 never reaches that point.
    const kept = await series(p, "checker kept");
    expect(kept.points.length).toBe(2);
    expect(kept.points.every((k) => k.row.startsWith("3.18.0 │ checker"))).toBe(true);
    expect(await p.page.evaluate(() => document.querySelectorAll("*").length)).toBeLessThan(1000);
    const png = join(out, "report.png");
    await p.page.screenshot({ path: png, fullPage: true });
    expect(readFileSync(png).subarray(1, 4).toString()).toBe("PNG");
    expect(statSync(png).size).toBeGreaterThan(20_000);
    expect(p.errors).toEqual([]);
  });

  it("a run longer than ten minutes opens on a one-minute window around its first error, keeps every mark, and adds no DOM nodes per event", async () => {
    const long = readFileSync(join(ROOT, "scenarios/13101-crash-loop-after-patch.yaml"), "utf8").replace("  - wait: 3s\n", "  - wait: 700s\n").replace("atMost: 4", "atMost: 1000");
    const file = join(out, "long.yaml");
    writeFileSync(file, long);
    const dir = join(out, "long");
    const res = await execa("node", ["bin/harness.js", "run", file, "--versions", "3.15.0", "--store", "memory", "--reporter", "html", "--out", dir], { cwd: ROOT, reject: false });
    expect(res.exitCode, res.stderr).toBe(0);
    const q = await openPage(pathToFileURL(join(dir, "report.html")).href);
    try {
      await q.page.goto(pathToFileURL(join(dir, "report.html")).href);
      await q.page.waitForFunction(() => window.harnessReport?.rendered);
      expect(q.errors).toEqual([]);
      const errors = await series(q, "error");
      expect(errors.points.length).toBeGreaterThanOrEqual(699);
      const zoom = await q.page.evaluate(() => {
        const opt = window.harnessReport.chart().getOption() as unknown as { dataZoom: { startValue: number; endValue: number }[] };
        return [opt.dataZoom[0]!.startValue, opt.dataZoom[0]!.endValue];
      });
      expect(zoom[1]! - zoom[0]!).toBe(60_000);
      expect(zoom[0]).toBeLessThanOrEqual(errors.points[0]!.t);
      expect(await q.page.evaluate(() => document.querySelectorAll("*").length)).toBeLessThan(500);
    } finally {
      await q.close();
    }
  }, 60_000);
});
