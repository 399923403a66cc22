import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { afterEach, describe, expect, it } from "vitest";
import { junitXml, writeJunit } from "../../harness/report/junit.ts";
import { fixtureRuns, fixtureSuite } from "./fixture.ts";

interface Attrs {
  [attr: `@_${string}`]: string;
}
interface Case extends Attrs {
  properties?: { property: Attrs[] };
  failure?: Attrs & { "#cdata"?: string };
  "system-out"?: { "#cdata": string };
}
interface Suite extends Attrs {
  properties?: { property: Attrs[] };
  testcase: Case[];
}
interface Report {
  testsuites: Attrs & { testsuite: Suite[] };
}

function parse(xml: string): Report {
  expect(XMLValidator.validate(xml)).toBe(true);
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: "@_",
    cdataPropName: "#cdata",
    isArray: (name) => name === "testsuite" || name === "testcase" || name === "property",
  });
  return parser.parse(xml) as Report;
}

function props(node: { properties?: { property: Attrs[] } }): Record<string, string> {
  return Object.fromEntries((node.properties?.property ?? []).map((p) => [p["@_name"], p["@_value"]]));
}

describe("junitXml", () => {
  const report = parse(junitXml(fixtureSuite()));
  const suites = report.testsuites.testsuite;

  it("totals on the root: 4 testcases, 2 failures, no errors", () => {
    const root = report.testsuites;
    expect([root["@_tests"], root["@_failures"], root["@_errors"], root["@_skipped"]]).toEqual(["4", "2", "0", "0"]);
  });

  it("one testsuite per scenario, named after it, with its file, issue and tags as properties", () => {
    expect(suites.map((s) => s["@_name"])).toEqual(["crash loop after PATCH", "health check survives etcd restart"]);
    expect(suites.map((s) => [s["@_tests"], s["@_failures"]])).toEqual([["2", "1"], ["2", "1"]]);
    expect(props(suites[0]!)).toEqual({ file: "scenarios/13101-crash-loop.yaml", issue: "apache/apisix#13101", tags: "13101,ai-proxy-multi" });
    expect(props(suites[1]!)).toEqual({ file: "scenarios/etcd-restart.yaml", tags: "etcd" });
    // 412 + 398 ms and 1003 + 62 ms
    expect(suites.map((s) => s["@_time"])).toEqual(["0.81", "1.065"]);
    expect(suites[0]!["@_timestamp"]).toBe("2025-06-01T10:00:00.000Z");
  });

  it("one testcase per version: name = version, classname = scenario file, time in seconds", () => {
    const cases = suites.map((s) => s.testcase.map((c) => [c["@_name"], c["@_classname"], c["@_time"]]));
    expect(cases).toEqual([
      [
        ["3.15.0", "scenarios/13101-crash-loop.yaml", "0.412"],
        ["3.17.0", "scenarios/13101-crash-loop.yaml", "0.398"],
      ],
      [
        ["3.17.0", "scenarios/etcd-restart.yaml", "1.003"],
        ["3.15.0", "scenarios/etcd-restart.yaml", "0.062"],
      ],
    ]);
    expect(props(suites[1]!.testcase[0]!)).toEqual({ expected: "passes", outcome: "error", target: "inproc", store: "memory", seed: "42" });
  });

  it("only runs that missed their expectation are failures, with expected/observed and the failing step's message", () => {
    const failures = suites.flatMap((s) => s.testcase.filter((c) => c.failure).map((c) => [s["@_name"], c["@_name"], c.failure!["@_message"]]));
    expect(failures).toEqual([
      ["crash loop after PATCH", "3.17.0", "expected passes, observed reproduces — step 2 (assert): bug signature held: 7 checker failures after PATCH, expected none"],
      ["health check survives etcd restart", "3.17.0", "expected passes, observed error — step 1 (etcd): etcd did not come back within 5000 ms"],
    ]);
  });

  it("the failure text lists the steps with their status, and the failing step's expected and observed values", () => {
    expect(suites[0]!.testcase[1]!.failure!["#cdata"]).toBe(
      [
        "expected passes, observed reproduces",
        "bug assertions held: 1/1",
        "steps:",
        "  [0] ok    admin   @0 ms (3 ms)  PUT /apisix/admin/routes/1 -> 201",
        "  [1] ok    admin   @1000 ms (2 ms)  PATCH /apisix/admin/routes/1 -> 200",
        "  [2] FAIL  assert  @4000 ms (1 ms)  checker failures after PATCH > 0 (bug assertion held)",
        "        bug signature held: 7 checker failures after PATCH, expected none",
        'step 2 expected: {"failures":0}',
        'step 2 observed: {"failures":7}',
      ].join("\n"),
    );
  });

  it("system-out of every testcase holds its steps' summaries", () => {
    expect(suites[1]!.testcase[1]!["system-out"]!["#cdata"]).toBe(
      ["[0] etcd    @0 ms  stop etcd", "[1] etcd    @10 ms  start etcd, wait until healthy", "[2] assert  @60 ms  no checker failures after restart"].join("\n"),
    );
    for (const c of suites.flatMap((s) => s.testcase)) expect(c["system-out"]!["#cdata"]).toContain("[0] ");
  });

  it("stays well-formed when observed text contains several CDATA terminators", () => {
    const runs = fixtureRuns();
    runs[1]!.failure!.observed = { body: "a]]>b]]>c" };
    runs[1]!.steps[1]!.summary = "PATCH ]]> one ]]> two";
    const xml = junitXml(fixtureSuite(runs));
    // fast-xml-parser's validator accepts a stray `]]>`, so check that every one closes a section.
    expect(xml.split("]]>").length).toBe(xml.split("<![CDATA[").length);
    const parsed = parse(xml);
    const tc = parsed.testsuites.testsuite[0]!.testcase[1]!;
    expect(tc.failure!["#cdata"]).toContain('step 2 observed: {"body":"a]] >b]] >c"}');
    expect(tc["system-out"]!["#cdata"]).toContain("PATCH ]] > one ]] > two");
  });

  it("builds each report afresh (the package's default builder would accumulate)", () => {
    const twice = parse(junitXml(fixtureSuite()));
    expect(twice.testsuites["@_tests"]).toBe("4");
  });
});

describe("writeJunit", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("writes the XML to the file, creating missing directories", () => {
    dir = mkdtempSync(join(tmpdir(), "junit-"));
    const file = join(dir, "a", "b", "junit.xml");
    writeJunit(fixtureSuite(), file);
    const report = parse(readFileSync(file, "utf8"));
    expect(report.testsuites.testsuite.flatMap((s) => s.testcase)).toHaveLength(4);
  });
});
