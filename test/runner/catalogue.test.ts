import { modelVersion } from "../../harness/gateway/model-engine.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acquireStore, storePerRun, type ProvisionedStore } from "../../harness/etcd/provision.ts";
import { getProfile, PROFILES } from "../../harness/gateway/versions/index.ts";
import { findScenarioFiles, loadScenario } from "../../harness/runner/load.ts";
import { runSuite } from "../../harness/runner/suite.ts";
import { InprocFactory, InprocTarget } from "../../harness/targets/inproc.ts";
import { hasEtcdBinary } from "../helpers/processes.ts";

/**
 * The whole catalogue against every profile on a real etcd. The expectations live in the
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

  it("an etcd restart in one run breaks only that run's watch, not a concurrent run's", async () => {
    const factory = new InprocFactory(storePerRun(provisioned), "etcd");
    const world = { backends: [{ name: "a", hosts: ["a.test"], mode: { kind: "healthy" as const } }], hosts: {} };
    const a = await factory.create(world, modelVersion(getProfile("3.15.0")), 1, 1);
    const b = await factory.create(world, modelVersion(getProfile("3.15.0")), 2, 1);
    try {
      await a.target.etcd("restart");
      // The restarted run's watch resumed (nothing reloaded); the other run's never broke.
      const config = (r: typeof a) => (r.target as InprocTarget).gateway.config;
      expect([config(a).resumes, config(a).reloads]).toEqual([1, 1]);
      expect([config(b).resumes, config(b).reloads]).toEqual([0, 1]);
    } finally {
      await a.target.close();
      await b.target.close();
    }
  });

  it("every scenario x version (releases and candidates) meets its expectation", async () => {
    expect(provisioned.kind).toBe("etcd");
    const scenarios = findScenarioFiles(["scenarios"]).map(loadScenario);
    expect(scenarios.length).toBeGreaterThanOrEqual(8);
    const suite = await runSuite({ scenarios, versions: PROFILES.map(modelVersion), factory: new InprocFactory(storePerRun(provisioned), "etcd"), seed: 7 });
    const bad = suite.runs.filter((r) => !r.met).map((r) => `${r.scenario.file} ${r.version}: ${r.outcome} (expected ${r.expected}) ${r.failure?.message ?? ""}`);
    expect(bad).toEqual([]);
    const outcome = (file: string, version: string) => suite.runs.find((r) => r.scenario.file.endsWith(file) && r.version === version)?.outcome;
    expect(outcome("13101-crash-loop-after-patch.yaml", "3.15.0")).toBe("reproduces");
    expect(outcome("13101-crash-loop-after-patch.yaml", "3.18.0")).toBe("passes");
    expect(outcome("instance-removed-while-working.yaml", "3.17.0")).toBe("reproduces");
    expect(outcome("instance-removed-while-working.yaml", "3.18.0")).toBe("passes");
    expect(outcome("checker-survives-etcd-restart.yaml", "3.18.0")).toBe("passes");
    expect(outcome("checker-survives-etcd-restart.yaml", "suggested")).toBe("reproduces");
    const reproducing = suite.runs.filter((r) => r.outcome === "reproduces").length;
    expect(reproducing).toBeGreaterThan(8);
    expect(reproducing).toBeLessThan(suite.runs.length);
  });
});
