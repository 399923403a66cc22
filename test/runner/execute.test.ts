import { modelVersion } from "../../harness/gateway/model-engine.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MemoryStore } from "../../harness/gateway/config/memory-store.ts";
import { getProfile } from "../../harness/gateway/versions/index.ts";
import { loadScenario } from "../../harness/runner/load.ts";
import { runSuite } from "../../harness/runner/suite.ts";
import { InprocFactory } from "../../harness/targets/inproc.ts";

const dir = mkdtempSync(join(tmpdir(), "harness-exec-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function scenario(name: string, text: string) {
  const file = join(dir, name);
  writeFileSync(file, text);
  return loadScenario(file);
}

async function runOn(versions: string[], s: ReturnType<typeof loadScenario>) {
  return runSuite({ scenarios: [s], versions: versions.map((v) => modelVersion(getProfile(v))), factory: new InprocFactory(() => new MemoryStore(), "memory"), seed: 1 });
}

const base = `
backends:
  openai: {hosts: [api.openai.com]}
steps:
  - admin: {method: PUT, path: /apisix/admin/routes/1, fixture: 13101/route.json}
  - request: {path: /ai/chat/completions, fixture: 13101/chat-request.json, status: 200}
  - wait: 2s
  - admin: {method: PATCH, path: /apisix/admin/routes/1, body: {desc: x}}
  - mark: patched
  - wait: 3s
`;

describe("judging a run", () => {
  it("a version that does not do what the scenario expects is reported, with the step", async () => {
    const s = scenario("wrong.yaml", `name: wrong expectation${base}  - assert:
      bug: true
      log: {contains: "failed to run timer_working_pool_check", since: patched, count: 3}
expect: {default: reproduces}
`);
    const suite = await runOn(["3.15.0", "3.18.0"], s);
    expect(suite.runs.map((r) => [r.version, r.outcome, r.met])).toEqual([
      ["3.15.0", "reproduces", true],
      ["3.18.0", "passes", false],
    ]);
    expect(suite.ok).toBe(false);
  });

  it("a failing plain check ends the run as an error with the step, what was expected and what was seen", async () => {
    const s = scenario("plain.yaml", `name: plain check${base}  - assert:
      note: there must be no failure
      log: {contains: "failed to run", since: patched, absent: true}
  - wait: 1s
expect: {default: passes}
`);
    const suite = await runOn(["3.16.0"], s);
    const run = suite.runs[0]!;
    expect(run.outcome).toBe("error");
    expect(run.failure?.step).toBe(6);
    expect(run.failure?.message).toMatch(/^line \d+: log "failed to run" after mark patched: 3 matching line\(s\), expected no line; first: .*healthcheck_manager\.lua:288/);
    expect(run.steps).toHaveLength(7);
  });

  it("an unexpected Admin API status fails the step and says what came back", async () => {
    const s = scenario("status.yaml", `name: status
steps:
  - admin: {method: PUT, path: /apisix/admin/routes/1, body: {uri: /x, plugins: {ai-proxy-multi: {instances: []}}}}
expect: {default: passes}
`);
    const run = (await runOn(["3.18.0"], s)).runs[0]!;
    expect(run.outcome).toBe("error");
    expect(run.failure?.message).toContain("expected status 2xx, got 400");
    expect(run.failure?.message).toContain(`property \\"instances\\" validation failed: expect array to have at least 1 items`);
  });

  it("pool assertions compare exact sets of instance paths", async () => {
    const s = scenario("pools.yaml", `name: pools
backends:
  openai: {hosts: [api.openai.com]}
steps:
  - admin: {method: PUT, path: /apisix/admin/routes/1, fixture: 13101/route.json}
  - request: {path: /ai/chat/completions, fixture: 13101/chat-request.json}
  - assert:
      pools: {waiting: [{route: 1, instance: 0}, {route: 1, instance: 1}], working: []}
  - wait: 1s
  - assert:
      pools: {waiting: [], working: [{route: 1, instance: 0}]}
expect: {default: passes}
`);
    const run = (await runOn(["3.15.0"], s)).runs[0]!;
    expect(run.failure?.step).toBe(4);
    expect(run.failure?.message).toContain("working pool is [/apisix/routes/1#");
    expect(run.failure?.message).toContain("instances[1]], expected [");
  });
});
