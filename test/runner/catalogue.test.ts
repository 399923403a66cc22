import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acquireStore, type ProvisionedStore } from "../../harness/etcd/provision.ts";
import { RELEASES } from "../../harness/gateway/versions/index.ts";
import { findScenarioFiles, loadScenario } from "../../harness/runner/load.ts";
import { runSuite } from "../../harness/runner/suite.ts";
import { InprocFactory } from "../../harness/targets/inproc.ts";
import { hasEtcdBinary } from "../helpers/processes.ts";

/**
 * The whole catalogue against the four releases on a real etcd. The expectations live in the
 * scenario files; this checks that the gateway meets each one, and that the catalogue really
 * tells the versions apart (it is not a suite where everything passes everywhere).
 */
describe.skipIf(!hasEtcdBinary())("scenario catalogue on real etcd", () => {
  let provisioned: ProvisionedStore;
  beforeAll(async () => {
    provisioned = await acquireStore({ prefer: "etcd", log: () => undefined });
  });
  afterAll(async () => {
    await provisioned?.release();
  });

  it("every scenario x release meets its expectation", async () => {
    expect(provisioned.kind).toBe("etcd");
    const scenarios = findScenarioFiles(["scenarios"]).map(loadScenario);
    expect(scenarios.length).toBeGreaterThanOrEqual(8);
    const suite = await runSuite({ scenarios, profiles: [...RELEASES], factory: new InprocFactory(provisioned.store, "etcd"), seed: 7 });
    const bad = suite.runs.filter((r) => !r.met).map((r) => `${r.scenario.file} ${r.version}: ${r.outcome} (expected ${r.expected}) ${r.failure?.message ?? ""}`);
    expect(bad).toEqual([]);
    const outcome = (file: string, version: string) => suite.runs.find((r) => r.scenario.file.endsWith(file) && r.version === version)?.outcome;
    expect(outcome("13101-crash-loop-after-patch.yaml", "3.15.0")).toBe("reproduces");
    expect(outcome("13101-crash-loop-after-patch.yaml", "3.18.0")).toBe("passes");
    expect(outcome("instance-removed-while-working.yaml", "3.17.0")).toBe("reproduces");
    expect(outcome("instance-removed-while-working.yaml", "3.18.0")).toBe("passes");
    const reproducing = suite.runs.filter((r) => r.outcome === "reproduces").length;
    expect(reproducing).toBeGreaterThan(8);
    expect(reproducing).toBeLessThan(suite.runs.length);
  });
});
