/**
 * Plain-text progress and summary lines for the terminal and CI logs.
 */
import { runCount, type RunFailure, type RunResult, type SuiteResult } from "../runner/result.ts";

/** Log lines must stay single lines, so multi-line messages are folded. */
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

/** `apache/apisix#13101` or `…/issues/13101` → `#13101`; anything else is shown as given. */
export function shortIssue(issue: string): string {
  const m = /#(\d+)$/.exec(issue) ?? /\/(?:issues|pull)\/(\d+)\/?$/.exec(issue);
  return m ? `#${m[1]}` : issue;
}

/** ` — step 4 (assert): message`, with the step index as recorded in the run's step list. */
export function failureSuffix(failure: RunFailure | undefined): string {
  return failure ? ` — step ${failure.step} (${failure.kind}): ${oneLine(failure.message)}` : "";
}

/** `reproduces (expected reproduces)`; the longest form is 32 characters, padded to align columns. */
const VERDICT_WIDTH = "reproduces (expected reproduces)".length;

function verdict(run: RunResult): string {
  return run.outcome === "skipped" ? "skipped" : `${run.outcome} (expected ${run.expected})`;
}

function scenarioLabel(run: RunResult): string {
  return run.scenario.issue ? `${shortIssue(run.scenario.issue)} ${run.scenario.name}` : run.scenario.name;
}

/**
 * One progress line per run. `index` is the run's 1-based position, so the last run prints
 * `[32/32]`.
 */
export function progressLine(run: RunResult, index: number, total: number): string {
  const width = String(total).length;
  const count = runCount(run);
  const status = count === "passed" ? "ok" : count === "skipped" ? "skip" : "FAIL";
  const tail = count === "passed" ? "" : count === "skipped" ? ` — ${run.skipped}` : failureSuffix(run.failure);
  return (
    `[${String(index).padStart(width)}/${total}] ${status.padEnd(4)}  ${run.version.padEnd(6)}  ` +
    `${verdict(run).padEnd(VERDICT_WIDTH)}  ${scenarioLabel(run)}  (${Math.round(run.wallMs)} ms)${tail}`
  );
}

/** Runs that met their expectation count as passed, skipped ones as skipped, all others (errors included) as failed. */
export function countRuns(suite: SuiteResult): { passed: number; failed: number; skipped: number } {
  const counts = { passed: 0, failed: 0, skipped: 0 };
  for (const r of suite.runs) counts[runCount(r)] += 1;
  return counts;
}

/**
 * The closing block. The line `N passed, M failed` stands alone because CI greps for it.
 */
export function summaryText(suite: SuiteResult): string {
  const { passed, failed, skipped } = countRuns(suite);
  const scenarios = new Set(suite.runs.map((r) => r.scenario.file)).size;
  const lines = [
    `${suite.runs.length} runs of ${scenarios} scenarios on ${suite.versions.length} versions ` +
      `(target ${suite.target}, store ${suite.store}, seed ${suite.seed}) in ${(suite.wallMs / 1000).toFixed(1)} s`,
    `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`,
  ];
  for (const run of suite.runs.filter((r) => runCount(r) === "failed")) {
    lines.push(`  FAIL ${run.version}  ${scenarioLabel(run)} (${run.scenario.file}): ${verdict(run)}${failureSuffix(run.failure)}`);
  }
  for (const run of suite.runs.filter((r) => runCount(r) === "skipped")) {
    lines.push(`  SKIP ${run.version}  ${scenarioLabel(run)} (${run.scenario.file}): ${run.skipped}`);
  }
  return lines.join("\n");
}
