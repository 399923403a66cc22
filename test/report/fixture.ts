/**
 * A small hand-made suite for the report tests: 2 scenarios × 2 versions. On 3.17.0 the first
 * scenario reproduces where it should pass, and the second ends in an error. Runs are deliberately
 * not in column order (3.17.0 before 3.15.0 for the second scenario).
 */
import type { RunResult, SuiteResult } from "../../harness/runner/result.ts";

const crashLoop = { name: "crash loop after PATCH", file: "scenarios/13101-crash-loop.yaml", issue: "apache/apisix#13101", tags: ["13101", "ai-proxy-multi"] };
const etcdRestart = { name: "health check survives etcd restart", file: "scenarios/etcd-restart.yaml", tags: ["etcd"] };

const common = { target: "inproc", store: "memory", seed: 42 };

export function fixtureRuns(): RunResult[] {
  return [
    {
      ...common,
      scenario: crashLoop,
      engine: "model",
    version: "3.15.0",
      expected: "reproduces",
      outcome: "reproduces",
      met: true,
      bugAssertions: { held: 1, total: 1 },
      wallMs: 412,
      steps: [
        { index: 0, kind: "admin", summary: "PUT /apisix/admin/routes/1 -> 201", atMs: 0, wallMs: 3, ok: true, observed: { status: 201 } },
        { index: 1, kind: "admin", summary: "PATCH /apisix/admin/routes/1 -> 200", atMs: 1000, wallMs: 2, ok: true, observed: { status: 200 } },
        { index: 2, kind: "assert", summary: "checker failures after PATCH > 0", atMs: 4000, wallMs: 1, ok: true, bug: true, held: true, observed: { failures: 7 } },
      ],
    },
    {
      ...common,
      scenario: crashLoop,
      engine: "model",
    version: "3.17.0",
      expected: "passes",
      outcome: "reproduces",
      met: false,
      bugAssertions: { held: 1, total: 1 },
      wallMs: 398,
      failure: { step: 2, kind: "assert", message: "bug signature held: 7 checker failures after PATCH, expected none", expected: { failures: 0 }, observed: { failures: 7 } },
      steps: [
        { index: 0, kind: "admin", summary: "PUT /apisix/admin/routes/1 -> 201", atMs: 0, wallMs: 3, ok: true },
        { index: 1, kind: "admin", summary: "PATCH /apisix/admin/routes/1 -> 200", atMs: 1000, wallMs: 2, ok: true },
        {
          index: 2,
          kind: "assert",
          summary: "checker failures after PATCH > 0",
          atMs: 4000,
          wallMs: 1,
          ok: false,
          bug: true,
          held: true,
          message: "bug signature held: 7 checker failures after PATCH, expected none",
          expected: { failures: 0 },
          observed: { failures: 7 },
        },
      ],
    },
    {
      ...common,
      scenario: etcdRestart,
      engine: "model",
    version: "3.17.0",
      expected: "passes",
      outcome: "error",
      met: false,
      bugAssertions: { held: 0, total: 1 },
      wallMs: 1003,
      failure: { step: 1, kind: "etcd", message: "etcd did not come back within 5000 ms" },
      steps: [
        { index: 0, kind: "etcd", summary: "stop etcd", atMs: 0, wallMs: 2, ok: true },
        { index: 1, kind: "etcd", summary: "start etcd, wait until healthy", atMs: 10, wallMs: 993, ok: false, message: "etcd did not come back within 5000 ms" },
      ],
    },
    {
      ...common,
      scenario: etcdRestart,
      engine: "model",
    version: "3.15.0",
      expected: "passes",
      outcome: "passes",
      met: true,
      bugAssertions: { held: 0, total: 1 },
      wallMs: 62,
      steps: [
        { index: 0, kind: "etcd", summary: "stop etcd", atMs: 0, wallMs: 2, ok: true },
        { index: 1, kind: "etcd", summary: "start etcd, wait until healthy", atMs: 10, wallMs: 40, ok: true },
        { index: 2, kind: "assert", summary: "no checker failures after restart", atMs: 60, wallMs: 1, ok: true, bug: true, held: false },
      ],
    },
  ];
}

export function fixtureSuite(runs: RunResult[] = fixtureRuns()): SuiteResult {
  return { startedAt: "2025-06-01T10:00:00.000Z", wallMs: 1875, ...common, engines: ["model"],
  versions: ["3.15.0", "3.17.0"], runs, ok: runs.every((r) => r.met) };
}
