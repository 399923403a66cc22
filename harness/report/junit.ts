/**
 * JUnit XML for CI test views: one testsuite per scenario, one testcase per scenario × version.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import type { Builder } from "junit-report-builder";
import type { RunResult, StepRecord, SuiteResult } from "../runner/result.ts";
import { failureSuffix, oneLine } from "./console.ts";
import { toJsonText } from "./json.ts";

/**
 * The package is CommonJS (`module.exports = builder`) but its typings declare `export default`,
 * so under NodeNext a default import type-checks as `{ default: … }` while the runtime value is
 * the builder itself. Loading it through require gives the value its typings describe. Loaded
 * when a JUnit report is written (~0.1 s), not whenever reports are.
 */
const junitRoot = (): Builder => createRequire(import.meta.url)("junit-report-builder") as Builder;

/** Observed values go into the failure text; results.json keeps them whole. */
const OBSERVED_LIMIT = 4000;

function seconds(ms: number): number {
  return Number((ms / 1000).toFixed(3));
}

/**
 * xmlbuilder escapes only the first `]]>` in a CDATA section, so a second one (say, in a response
 * body excerpt) would end the section early and break the file. Break them all up beforehand.
 */
function cdataSafe(text: string): string {
  return text.replaceAll("]]>", "]] >");
}

function clip(text: string): string {
  return text.length <= OBSERVED_LIMIT ? text : `${text.slice(0, OBSERVED_LIMIT)}… (truncated, see results.json)`;
}

function stepSummaryLine(step: StepRecord): string {
  return `[${step.index}] ${step.kind.padEnd(7)} @${step.atMs} ms  ${oneLine(step.summary)}`;
}

function stepStatusLine(step: StepRecord): string {
  const bug = step.bug ? ` (bug assertion ${step.held ? "held" : "did not hold"})` : "";
  const head = `[${step.index}] ${(step.ok ? "ok" : "FAIL").padEnd(4)}  ${step.kind.padEnd(7)} @${step.atMs} ms (${step.wallMs} ms)  ${oneLine(step.summary)}${bug}`;
  return step.message ? `${head}\n      ${oneLine(step.message)}` : head;
}

function failureText(run: RunResult): string {
  const lines = [`expected ${run.expected}, observed ${run.outcome}`, `bug assertions held: ${run.bugAssertions.held}/${run.bugAssertions.total}`, "steps:"];
  lines.push(...run.steps.map((s) => "  " + stepStatusLine(s).replaceAll("\n", "\n  ")));
  const f = run.failure;
  if (f) {
    if (f.expected !== undefined) lines.push(`step ${f.step} expected: ${clip(toJsonText(f.expected))}`);
    if (f.observed !== undefined) lines.push(`step ${f.step} observed: ${clip(toJsonText(f.observed))}`);
  }
  return lines.join("\n");
}

export function junitXml(suite: SuiteResult): string {
  // A fresh builder each call: the package's default export is a shared, accumulating instance.
  const builder = junitRoot().newBuilder().name("apisix-healthcheck");

  // Scenarios are keyed by file (names need not be unique), in the order they first ran.
  const byScenario = new Map<string, RunResult[]>();
  for (const run of suite.runs) {
    const list = byScenario.get(run.scenario.file);
    if (list) list.push(run);
    else byScenario.set(run.scenario.file, [run]);
  }

  for (const [file, runs] of byScenario) {
    const scenario = runs[0]!.scenario;
    const ts = builder
      .testSuite()
      .name(scenario.name)
      .timestamp(suite.startedAt)
      .time(seconds(runs.reduce((sum, r) => sum + r.wallMs, 0)))
      .property("file", file);
    if (scenario.issue) ts.property("issue", scenario.issue);
    if (scenario.tags.length > 0) ts.property("tags", scenario.tags.join(","));

    for (const run of runs) {
      const tc = ts
        .testCase()
        .className(file)
        .name(run.version)
        .time(seconds(run.wallMs))
        .property("expected", run.expected)
        .property("outcome", run.outcome)
        .property("target", run.target)
        .property("store", run.store)
        .property("seed", String(run.seed));
      if (run.outcome === "skipped") {
        // The builder's <skipped/> carries no message: the reason goes in a property and the output.
        tc.skipped().property("skipped", run.skipped ?? "").standardOutput(cdataSafe(`skipped: ${run.skipped ?? ""}`));
      } else if (!run.met) {
        tc.failure(`expected ${run.expected}, observed ${run.outcome}${failureSuffix(run.failure)}`);
        tc.stacktrace(cdataSafe(failureText(run)));
      }
      if (run.steps.length > 0) tc.standardOutput(cdataSafe(run.steps.map(stepSummaryLine).join("\n")));
    }
  }
  return builder.build();
}

export function writeJunit(suite: SuiteResult, file: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, junitXml(suite) + "\n", "utf8");
}
