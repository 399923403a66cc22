/**
 * The HTML report: how long writing the page of the whole catalogue x the four releases takes,
 * and how long headless Chromium takes to load it until the page has drawn its first timeline.
 * Also an hour-long run (the #13101 crash loop for 3,600 s on 3.15.0 and 3.18.0), the size a
 * property-test counterexample can reach.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { MemoryStore } from "../harness/gateway/config/memory-store.ts";
import { modelVersion } from "../harness/gateway/model-engine.ts";
import { RELEASES } from "../harness/gateway/versions/index.ts";
import { writeHtml } from "../harness/report/html/index.ts";
import { findScenarioFiles, loadScenario } from "../harness/runner/load.ts";
import type { SuiteResult } from "../harness/runner/result.ts";
import { runSuite } from "../harness/runner/suite.ts";
import { InprocFactory } from "../harness/targets/inproc.ts";
import { openPage } from "../test/helpers/browser.ts";
import { fmtMs, max, median } from "./stats.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

export interface HtmlBench {
  rounds: number;
  runs: number;
  writeMs: number[];
  loadMs: number[];
  bytes: number;
  hour: { writeMs: number[]; loadMs: number[]; bytes: number; domNodes: number };
}

async function suiteOf(files: string[]): Promise<SuiteResult> {
  const factory = new InprocFactory(() => new MemoryStore("bench"), "memory");
  return runSuite({ scenarios: files.map(loadScenario), versions: RELEASES.map(modelVersion), factory, seed: 1 });
}

/** Write the page `rounds` times; ms each. */
function writes(suite: SuiteResult, file: string, rounds: number): number[] {
  const ms: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    writeHtml(suite, file);
    ms.push(performance.now() - t0);
  }
  return ms;
}

/** Load the page in a fresh tab until it has drawn; ms from navigation start. */
async function loads(file: string, rounds: number): Promise<{ ms: number[]; domNodes: number }> {
  const url = pathToFileURL(file).href;
  const browser = await openPage(url);
  const ms: number[] = [];
  let domNodes = 0;
  try {
    for (let i = 0; i < rounds; i++) {
      const page = i === 0 ? browser.page : await browser.page.context().newPage();
      const t0 = performance.now();
      await page.goto(url);
      await page.waitForFunction(() => (window as unknown as { harnessReport?: { rendered: string | null } }).harnessReport?.rendered);
      ms.push(performance.now() - t0);
      domNodes = await page.evaluate(() => document.querySelectorAll("*").length);
      if (i > 0) await page.close();
    }
    if (browser.errors.length > 0 || browser.requests.length > 0) throw new Error(`page errors ${browser.errors.join("; ")} / requests ${browser.requests.join(", ")}`);
  } finally {
    await browser.close();
  }
  return { ms, domNodes };
}

export async function benchHtml(rounds: number, log: (s: string) => void): Promise<HtmlBench> {
  const dir = mkdtempSync(join(tmpdir(), "harness-bench-html-"));
  try {
    const suite = await suiteOf(findScenarioFiles([join(ROOT, "scenarios")]));
    const file = join(dir, "report.html");
    const writeMs = writes(suite, file, rounds);
    const catalogue = await loads(file, rounds);
    log(`html catalogue (${suite.runs.length} runs): write ${writeMs.map(fmtMs).join(", ")}; load ${catalogue.ms.map(fmtMs).join(", ")}`);

    const long = readFileSync(join(ROOT, "scenarios/13101-crash-loop-after-patch.yaml"), "utf8").replace("  - wait: 3s\n", "  - wait: 3600s\n").replace("atMost: 4", "atMost: 4000");
    const longFile = join(dir, "hour.yaml");
    writeFileSync(longFile, long);
    const hourSuite = await runSuite({ scenarios: [loadScenario(longFile)], versions: RELEASES.filter((p) => p.name === "3.15.0" || p.name === "3.18.0").map(modelVersion), factory: new InprocFactory(() => new MemoryStore("bench"), "memory"), seed: 1 });
    const hourFile = join(dir, "hour.html");
    const hourWrite = writes(hourSuite, hourFile, rounds);
    const hour = await loads(hourFile, rounds);
    log(`html hour-long runs: write ${hourWrite.map(fmtMs).join(", ")}; load ${hour.ms.map(fmtMs).join(", ")}; ${hour.domNodes} DOM nodes`);
    return { rounds, runs: suite.runs.length, writeMs, loadMs: catalogue.ms, bytes: statSync(file).size, hour: { writeMs: hourWrite, loadMs: hour.ms, bytes: statSync(hourFile).size, domNodes: hour.domNodes } };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function htmlTable(h: HtmlBench): string {
  const row = (what: string, xs: number[], target: string) => `| ${what} | ${fmtMs(median(xs))} | ${fmtMs(max(xs))} | ${target} |`;
  const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
  return [
    `HTML report, ${h.rounds} rounds (page loaded in headless Chromium, from navigation until the first timeline is drawn):`,
    "",
    "| measurement | median | max | target |",
    "| --- | --- | --- | --- |",
    row(`write the page of the catalogue x 4 releases (${h.runs} runs, ${mb(h.bytes)})`, h.writeMs, "<= 1 s"),
    row("load that page in Chromium", h.loadMs, "<= 2 s"),
    row(`write the page of two hour-long runs (3.15.0 and 3.18.0, ${mb(h.hour.bytes)})`, h.hour.writeMs, "-"),
    row(`load that page (${h.hour.domNodes} DOM nodes)`, h.hour.loadMs, "-"),
    "",
    "The first write of a process also reads ECharts from node_modules (it is in the max).",
  ].join("\n");
}
