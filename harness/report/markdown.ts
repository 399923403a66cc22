/**
 * A scenario × version matrix in GitHub-flavoured Markdown, for matrix.md and the job summary.
 */
import { appendFileSync, existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { runCount, type RunResult, type SuiteResult } from "../runner/result.ts";
import { countRuns, failureSuffix, oneLine } from "./console.ts";

/** A `|` would split the table cell, a line break would end the row. */
function cellText(text: string): string {
  return oneLine(text).replaceAll("|", "\\|");
}

function cell(runs: RunResult[] | undefined): string {
  if (!runs) return "–";
  return runs
    .map((r) => {
      if (r.met) return `✅ ${r.outcome}`;
      if (r.outcome === "skipped") return "⏭️ skipped";
      return `${r.outcome === "error" ? "⚠️" : "❌"} ${r.outcome} (expected ${r.expected})`;
    })
    // Several runs of one scenario on one version should not happen, but none is dropped if they do.
    .join("<br>");
}

function scenarioLabel(run: RunResult): string {
  return run.scenario.issue ? `${run.scenario.name} (${run.scenario.issue})` : run.scenario.name;
}

export function markdownMatrix(suite: SuiteResult): string {
  // Columns follow suite.versions; a version that only appears in runs is added at the end
  // rather than silently left out of the table.
  const versions = [...suite.versions];
  for (const r of suite.runs) if (!versions.includes(r.version)) versions.push(r.version);

  // Rows are scenarios keyed by file, in the order they first ran.
  const rows = new Map<string, Map<string, RunResult[]>>();
  for (const r of suite.runs) {
    let row = rows.get(r.scenario.file);
    if (!row) rows.set(r.scenario.file, (row = new Map()));
    const list = row.get(r.version);
    if (list) list.push(r);
    else row.set(r.version, [r]);
  }

  const { passed, failed, skipped } = countRuns(suite);
  const lines = [
    "## APISIX health-check scenarios",
    "",
    `**${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}** · ${suite.runs.length} runs · ${rows.size} scenarios on ${versions.length} versions · ` +
      `target \`${suite.target}\` · store \`${suite.store}\` · seed ${suite.seed} · ${(suite.wallMs / 1000).toFixed(1)} s`,
    "",
    `| Scenario | ${versions.map(cellText).join(" | ")} |`,
    `| --- |${" --- |".repeat(versions.length)}`,
  ];
  for (const row of rows.values()) {
    const first = [...row.values()][0]![0]!;
    lines.push(`| ${cellText(scenarioLabel(first))} | ${versions.map((v) => cell(row.get(v))).join(" | ")} |`);
  }

  const failing = suite.runs.filter((r) => runCount(r) === "failed");
  if (failing.length > 0) {
    lines.push("", "### Failures", "");
    for (const r of failing) {
      lines.push(`- **${r.scenario.name}** on ${r.version} (\`${r.scenario.file}\`): ${r.outcome}, expected ${r.expected}${failureSuffix(r.failure)}`);
    }
  }
  const skippedRuns = suite.runs.filter((r) => runCount(r) === "skipped");
  if (skippedRuns.length > 0) {
    lines.push("", "### Skipped", "");
    for (const r of skippedRuns) lines.push(`- **${r.scenario.name}** on ${r.version} (\`${r.scenario.file}\`): ${cellText(r.skipped ?? "")}`);
  }
  return lines.join("\n") + "\n";
}

export function writeMarkdown(suite: SuiteResult, file: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, markdownMatrix(suite), "utf8");
}

/**
 * Appends the matrix to the GitHub Actions job summary when GITHUB_STEP_SUMMARY names a file;
 * outside Actions it does nothing. Returns the file appended to, if any.
 */
export function appendStepSummary(suite: SuiteResult): string | undefined {
  const file = process.env.GITHUB_STEP_SUMMARY;
  if (!file) return undefined;
  mkdirSync(dirname(file), { recursive: true });
  // A blank line keeps the heading apart from whatever an earlier step appended.
  const separator = existsSync(file) && statSync(file).size > 0 ? "\n" : "";
  appendFileSync(file, separator + markdownMatrix(suite), "utf8");
  return file;
}
