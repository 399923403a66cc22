import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { appendStepSummary, markdownMatrix, writeMarkdown } from "../../harness/report/markdown.ts";
import { fixtureRuns, fixtureSuite } from "./fixture.ts";

/** The matrix of the fixture suite, written out by hand: any formatting change must show up here. */
const EXPECTED = `## APISIX health-check scenarios

**2 passed, 2 failed** · 4 runs · 2 scenarios on 2 versions · target \`inproc\` · store \`memory\` · seed 42 · 1.9 s

| Scenario | 3.15.0 | 3.17.0 |
| --- | --- | --- |
| crash loop after PATCH (apache/apisix#13101) | ✅ reproduces | ❌ reproduces (expected passes) |
| health check survives etcd restart | ✅ passes | ⚠️ error (expected passes) |

### Failures

- **crash loop after PATCH** on 3.17.0 (\`scenarios/13101-crash-loop.yaml\`): reproduces, expected passes — step 2 (assert): bug signature held: 7 checker failures after PATCH, expected none
- **health check survives etcd restart** on 3.17.0 (\`scenarios/etcd-restart.yaml\`): error, expected passes — step 1 (etcd): etcd did not come back within 5000 ms
`;

describe("markdownMatrix", () => {
  it("renders the fixture suite exactly", () => {
    expect(markdownMatrix(fixtureSuite())).toBe(EXPECTED);
  });

  it("shows – where a scenario did not run on a version", () => {
    const runs = fixtureRuns().filter((r) => !(r.scenario.file === "scenarios/etcd-restart.yaml" && r.version === "3.15.0"));
    const lines = markdownMatrix(fixtureSuite(runs)).split("\n");
    expect(lines).toContain("| health check survives etcd restart | – | ⚠️ error (expected passes) |");
    expect(lines).toContain("**1 passed, 2 failed** · 3 runs · 2 scenarios on 2 versions · target `inproc` · store `memory` · seed 42 · 1.9 s");
  });

  it("leaves out the Failures section when every run met its expectation", () => {
    const text = markdownMatrix(fixtureSuite(fixtureRuns().filter((r) => r.met)));
    expect(text).not.toContain("Failures");
    expect(text.trimEnd().split("\n").at(-1)).toBe("| health check survives etcd restart | ✅ passes | – |");
  });

  it("escapes | in scenario names so the row keeps its columns", () => {
    const runs = fixtureRuns();
    for (const r of runs) if (r.scenario.file === "scenarios/etcd-restart.yaml") r.scenario = { ...r.scenario, name: "restart | rejoin" };
    expect(markdownMatrix(fixtureSuite(runs)).split("\n")).toContain("| restart \\| rejoin | ✅ passes | ⚠️ error (expected passes) |");
  });
});

describe("writeMarkdown and appendStepSummary", () => {
  const saved = process.env.GITHUB_STEP_SUMMARY;
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "md-"));
    // On GitHub Actions the variable is set for real; the tests must never append to that file.
    delete process.env.GITHUB_STEP_SUMMARY;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.GITHUB_STEP_SUMMARY;
    else process.env.GITHUB_STEP_SUMMARY = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it("writeMarkdown writes the matrix, creating missing directories", () => {
    const file = join(dir, "out", "matrix.md");
    writeMarkdown(fixtureSuite(), file);
    expect(readFileSync(file, "utf8")).toBe(EXPECTED);
  });

  it("does nothing without GITHUB_STEP_SUMMARY", () => {
    expect(appendStepSummary(fixtureSuite())).toBeUndefined();
    expect(readdirSync(dir)).toEqual([]);
  });

  it("creates the summary file when missing, and appends to it on later calls", () => {
    const file = join(dir, "step", "summary.md");
    process.env.GITHUB_STEP_SUMMARY = file;
    expect(appendStepSummary(fixtureSuite())).toBe(file);
    expect(readFileSync(file, "utf8")).toBe(EXPECTED);
    appendStepSummary(fixtureSuite());
    expect(readFileSync(file, "utf8")).toBe(EXPECTED + "\n" + EXPECTED);
  });

  it("keeps what earlier steps wrote", () => {
    const file = join(dir, "summary.md");
    writeFileSync(file, "earlier step\n");
    process.env.GITHUB_STEP_SUMMARY = file;
    appendStepSummary(fixtureSuite());
    expect(readFileSync(file, "utf8")).toBe("earlier step\n\n" + EXPECTED);
    expect(existsSync(join(dir, "matrix.md"))).toBe(false);
  });
});
