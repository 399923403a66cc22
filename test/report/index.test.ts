import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseReporters, UnknownReporterError, writeReports } from "../../harness/report/index.ts";
import { fixtureSuite } from "./fixture.ts";

describe("parseReporters", () => {
  it("reads a comma-separated list, ignoring blanks and repeats", () => {
    expect(parseReporters("junit, markdown")).toEqual(["junit", "markdown"]);
    expect(parseReporters("console,json,,json ")).toEqual(["console", "json"]);
  });

  it("names the unknown reporter and the known ones", () => {
    expect(() => parseReporters("junit,xml")).toThrow(UnknownReporterError);
    expect(() => parseReporters("junit,xml")).toThrow('unknown reporter "xml" (known: console, junit, json, markdown, html)');
  });

  it("rejects an empty list", () => {
    expect(() => parseReporters(" , ")).toThrow("no reporter given (known: console, junit, json, markdown, html)");
  });
});

describe("writeReports", () => {
  const saved = process.env.GITHUB_STEP_SUMMARY;
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "reports-"));
    delete process.env.GITHUB_STEP_SUMMARY;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.GITHUB_STEP_SUMMARY;
    else process.env.GITHUB_STEP_SUMMARY = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes one file per file reporter into a new outDir and returns their paths", () => {
    const out = join(dir, "a", "b");
    const written = writeReports(fixtureSuite(), ["console", "junit", "json", "markdown"], out);
    expect(written).toEqual([join(out, "junit.xml"), join(out, "results.json"), join(out, "matrix.md")]);
    expect(readFileSync(join(out, "junit.xml"), "utf8")).toContain('<testsuites name="apisix-healthcheck" tests="4" failures="2"');
    expect(JSON.parse(readFileSync(join(out, "results.json"), "utf8"))).toEqual(fixtureSuite());
    expect(readFileSync(join(out, "matrix.md"), "utf8")).toContain("| health check survives etcd restart | ✅ passes | ⚠️ error (expected passes) |");
  });

  it("console alone writes nothing", () => {
    const out = join(dir, "out");
    expect(writeReports(fixtureSuite(), ["console"], out)).toEqual([]);
    expect(existsSync(out)).toBe(false);
  });

  it("appends to GITHUB_STEP_SUMMARY only when markdown is chosen", () => {
    const summary = join(dir, "summary.md");
    process.env.GITHUB_STEP_SUMMARY = summary;
    writeReports(fixtureSuite(), ["junit", "json"], join(dir, "out"));
    expect(existsSync(summary)).toBe(false);
    writeReports(fixtureSuite(), ["markdown"], join(dir, "out"));
    expect(readFileSync(summary, "utf8")).toContain("**2 passed, 2 failed**");
  });
});
