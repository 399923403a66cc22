/**
 * The HTML report: one self-contained page (styles, script, data and the charting library
 * inline; nothing fetched when it is viewed) with the scenario x version matrix and, per run, a
 * timeline drawn by Apache ECharts on a canvas. ECharts is read from its installed package as
 * text when a page is written; it is never imported into Node.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { RunResult, SuiteResult } from "../../runner/result.ts";
import { countRuns, oneLine, shortIssue } from "../console.ts";
import { LANE_ORDER, runLanes, STYLES, type LaneModel } from "./lanes.ts";

export interface HtmlOptions {
  title?: string;
  /** Preformatted text shown above the matrix (e.g. the property verdicts of `harness props`). */
  extra?: { title: string; text: string };
}

interface PageRun {
  scenario: number;
  column: string;
  version: string;
  engine?: string;
  target: string;
  expected: string;
  outcome: string;
  met: boolean;
  failure?: string;
  steps: { t: number; text: string; ok: boolean; bug: boolean }[];
  lanes: LaneModel;
}

let assets: { echarts: string; css: string; js: string } | undefined;

/** The library and the page's own files, read once per process. */
function pageAssets(): { echarts: string; css: string; js: string } {
  if (!assets) {
    const echartsMain = createRequire(import.meta.url).resolve("echarts");
    assets = {
      // The "common" build has the scatter and line series, tooltips and data zoom this page uses.
      echarts: readFileSync(join(dirname(echartsMain), "echarts.common.min.js"), "utf8"),
      css: readFileSync(new URL("./page.css", import.meta.url), "utf8"),
      js: readFileSync(new URL("./page.js", import.meta.url), "utf8"),
    };
  }
  return assets;
}

/** Columns are versions, or version · engine where runs of more than one engine are present. */
function columnOf(run: RunResult, engines: boolean): string {
  return engines ? `${run.version} · ${run.engine ?? "model"}` : run.version;
}

function pageData(suite: SuiteResult, opts: HtmlOptions): unknown {
  const engines = new Set(suite.runs.map((r) => r.engine ?? "model")).size > 1;
  const scenarios: { file: string; name: string; label: string }[] = [];
  const scenarioIndex = new Map<string, number>();
  const columns: string[] = [];
  for (const v of suite.versions) if (!engines) columns.push(v);
  const runs: PageRun[] = suite.runs.map((r) => {
    let s = scenarioIndex.get(r.scenario.file);
    if (s === undefined) {
      s = scenarios.length;
      scenarioIndex.set(r.scenario.file, s);
      scenarios.push({ file: r.scenario.file, name: r.scenario.name, label: r.scenario.issue ? `${shortIssue(r.scenario.issue)} ${r.scenario.name}` : r.scenario.name });
    }
    const column = columnOf(r, engines);
    if (!columns.includes(column)) columns.push(column);
    const run: PageRun = {
      scenario: s,
      column,
      version: r.version,
      target: r.target,
      expected: r.expected,
      outcome: r.outcome,
      met: r.met,
      steps: r.steps.map((st) => ({ t: st.atMs, text: oneLine(st.summary + (st.message ? ` — ${st.message}` : "")), ok: st.ok, bug: st.bug === true })),
      lanes: runLanes(r),
    };
    if (r.engine) run.engine = r.engine;
    if (r.failure) run.failure = `step ${r.failure.step} (${r.failure.kind}): ${oneLine(r.failure.message)}`;
    if (r.skipped) run.failure = `skipped: ${oneLine(r.skipped)}`;
    return run;
  });
  const { passed, failed, skipped } = countRuns(suite);
  return {
    title: opts.title ?? "APISIX health-check scenarios",
    summary: `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""} · ${suite.runs.length} runs · ${scenarios.length} scenarios on ${columns.length} ${engines ? "version/engine pairs" : "versions"} · target ${suite.target} · store ${suite.store} · seed ${suite.seed} · ${(suite.wallMs / 1000).toFixed(1)} s · ${suite.startedAt}`,
    columns: columns.filter((c) => runs.some((r) => r.column === c)),
    scenarios,
    runs,
    styles: STYLES,
    laneOrder: LANE_ORDER,
    clockNote: { virtual: "time since the run started (virtual clock)", real: "time since the run started (real clock)", steps: "time since the run started (steps only: no timeline recorded)" },
    extra: opts.extra,
  };
}

/** `</script>` or `<!--` inside the data must not end or confuse the script element. */
function scriptSafe(json: string): string {
  return json.replace(/</g, "\\u003c");
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}

export function htmlReport(suite: SuiteResult, opts: HtmlOptions = {}): string {
  const a = pageAssets();
  const data = pageData(suite, opts) as { title: string; summary: string };
  const extra = opts.extra ? `<h2>${escapeHtml(opts.extra.title)}</h2>\n<pre class="extra">${escapeHtml(opts.extra.text)}</pre>\n` : "";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(data.title)}</title>
<style>${a.css}</style>
</head>
<body>
<h1>${escapeHtml(data.title)}</h1>
<p class="summary">${escapeHtml(data.summary)}</p>
${extra}<table class="matrix" id="matrix"></table>
<p class="note">Cells: green = as expected, red = not as expected, orange = error; a white dot = the bug's signature held (reproduces). Click a cell for its timeline; "compare" puts two versions of a scenario on one time axis.</p>
<section id="view" hidden>
<div class="head" id="view-head"></div>
<div id="view-notes"></div>
<div id="chart"></div>
<pre id="detail"></pre>
<h2 id="steps-title">Steps</h2>
<ol class="steps" id="steps" start="0"></ol>
</section>
<script type="application/json" id="report-data">${scriptSafe(JSON.stringify(data))}</script>
<script>${a.echarts}</script>
<script>${a.js}</script>
</body>
</html>
`;
}

export function writeHtml(suite: SuiteResult, file: string, opts: HtmlOptions = {}): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, htmlReport(suite, opts), "utf8");
}
