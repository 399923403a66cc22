import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { XMLParser } from "fast-xml-parser";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const out = mkdtempSync(join(tmpdir(), "harness-reports-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe("reports of a real run (harness run, two scenarios x two versions)", async () => {
  const res = await execa(
    "node",
    ["bin/harness.js", "run", "scenarios/route-deleted-while-working.yaml", "scenarios/instance-removed-while-working.yaml", "--versions", "3.17.0,3.18.0", "--store", "memory", "--reporter", "console,junit,markdown,json", "--out", out],
    { cwd: ROOT, reject: false, env: { GITHUB_STEP_SUMMARY: "" } },
  );

  it("exits 0 and prints one progress line per run and the closing count", () => {
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout.split("\n").filter((l) => /^\[\s*\d\/4\] ok /.test(l))).toHaveLength(4);
    expect(res.stdout.split("\n")).toContain("4 passed, 0 failed");
  });

  it("JUnit: a suite per scenario, a testcase per version, no failures", () => {
    const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "" }).parse(readFileSync(join(out, "junit.xml"), "utf8")) as {
      testsuites: { testsuite: { name: string; tests: string; failures: string; testcase: { name: string; classname: string; failure?: unknown }[] }[] };
    };
    const suites = xml.testsuites.testsuite;
    expect(suites.map((s) => s.name)).toEqual(["a route deleted while its checkers work", "an instance with checks removed from the route while its checker works"]);
    for (const s of suites) {
      expect(s.testcase.map((c) => c.name)).toEqual(["3.17.0", "3.18.0"]);
      expect(s.testcase.every((c) => c.failure === undefined)).toBe(true);
      expect(s.failures).toBe("0");
    }
  });

  it("Markdown: the matrix reads as expected", () => {
    const md = readFileSync(join(out, "matrix.md"), "utf8").replace(/ · [\d.]+ s\n/, " · <time>\n");
    expect(md).toBe(`## APISIX health-check scenarios

**4 passed, 0 failed** · 4 runs · 2 scenarios on 2 versions · target \`inproc\` · store \`memory (memory)\` · seed 1 · <time>

| Scenario | 3.17.0 | 3.18.0 |
| --- | --- | --- |
| a route deleted while its checkers work | ✅ passes | ✅ passes |
| an instance with checks removed from the route while its checker works | ✅ reproduces | ✅ passes |
`);
  });

  it("JSON: every step with its time and observations", () => {
    const suite = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as { runs: { version: string; scenario: { file: string }; steps: { kind: string; atMs: number; observed?: unknown; summary: string }[] }[] };
    const removed17 = suite.runs.find((r) => r.version === "3.17.0" && r.scenario.file.endsWith("instance-removed-while-working.yaml"))!;
    expect(removed17.steps.map((s) => s.kind)).toEqual(["admin", "request", "wait", "admin", "mark", "wait", "assert", "assert", "assert"]);
    expect(removed17.steps.map((s) => s.atMs)).toEqual([0, 0, 0, 2000, 2000, 2000, 5000, 5000, 5000]);
    const bug = removed17.steps[6]!;
    expect(bug.summary).toMatch(/\(bug\).* -> holds$/);
    expect(JSON.stringify(bug.observed)).toContain("healthcheck_manager.lua:238: attempt to index local 'upstream'");
  });
});
