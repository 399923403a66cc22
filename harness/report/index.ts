/**
 * Reporter selection (`--reporter console,junit,…`) and writing the file reports of a suite.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { SuiteResult } from "../runner/result.ts";
import { writeHtml } from "./html/index.ts";
import { writeJson } from "./json.ts";
import { writeJunit } from "./junit.ts";
import { appendStepSummary, writeMarkdown } from "./markdown.ts";

export { progressLine, summaryText } from "./console.ts";
export { junitXml, writeJunit } from "./junit.ts";
export { suiteJson, writeJson } from "./json.ts";
export { appendStepSummary, markdownMatrix, writeMarkdown } from "./markdown.ts";
export { htmlReport, writeHtml } from "./html/index.ts";

export const REPORTERS = ["console", "junit", "json", "markdown", "html"] as const;
export type ReporterName = (typeof REPORTERS)[number];

/** A reporter name that is not one of REPORTERS, or an empty list. */
export class UnknownReporterError extends Error {}

/** File names inside the output directory, one per file reporter. */
export const REPORT_FILES = { junit: "junit.xml", json: "results.json", markdown: "matrix.md", html: "report.html" } as const;

function isReporter(name: string): name is ReporterName {
  return (REPORTERS as readonly string[]).includes(name);
}

/** Comma-separated names; blanks around names are ignored, repeats are kept once. */
export function parseReporters(list: string): ReporterName[] {
  const out: ReporterName[] = [];
  for (const name of list.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (!isReporter(name)) throw new UnknownReporterError(`unknown reporter "${name}" (known: ${REPORTERS.join(", ")})`);
    if (!out.includes(name)) out.push(name);
  }
  if (out.length === 0) throw new UnknownReporterError(`no reporter given (known: ${REPORTERS.join(", ")})`);
  return out;
}

/**
 * Writes the file reports into outDir and returns their paths in the order the reporters were
 * given. `console` writes nothing here: the runner prints it as the runs go. Choosing `markdown`
 * also appends to the GitHub job summary when one is configured; that file is not in the result.
 */
export function writeReports(suite: SuiteResult, reporters: readonly ReporterName[], outDir: string): string[] {
  const written: string[] = [];
  for (const reporter of new Set(reporters)) {
    if (reporter === "console") continue;
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, REPORT_FILES[reporter]);
    if (reporter === "junit") writeJunit(suite, file);
    else if (reporter === "json") writeJson(suite, file);
    else if (reporter === "html") writeHtml(suite, file);
    else {
      writeMarkdown(suite, file);
      appendStepSummary(suite);
    }
    written.push(file);
  }
  return written;
}
