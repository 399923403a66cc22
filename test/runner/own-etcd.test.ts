/**
 * Runs that act on etcd (restart, compact) need an etcd to themselves. Given one (`ownEtcd`), they
 * run there one at a time while the other runs go on; without one, or when it fails to start, or
 * with --concurrency 1, they run after the others on the shared store.
 */
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../../harness/gateway/config/memory-store.ts";
import { modelVersion } from "../../harness/gateway/model-engine.ts";
import { getProfile } from "../../harness/gateway/versions/index.ts";
import { loadScenario } from "../../harness/runner/load.ts";
import { runSuite, type TargetFactory } from "../../harness/runner/suite.ts";
import { InprocFactory } from "../../harness/targets/inproc.ts";

const actsOnEtcd = loadScenario("scenarios/etcd-restart-resumes-watch.yaml");
const plain = loadScenario("scenarios/backend-down-skipped.yaml");
const versions = ["3.17.0", "3.18.0"].map((v) => modelVersion(getProfile(v)));

/** Which scenario each create() was for, in order, and the events of both factories on one list. */
function recording(label: string, events: string[], beforeCreate?: (scenario: string) => Promise<void>): TargetFactory & { made: string[] } {
  const inner = new InprocFactory(() => new MemoryStore(), "memory");
  const made: string[] = [];
  return {
    name: "inproc",
    store: "memory",
    made,
    async create(world, version, runId, seed) {
      // The suite hands each run its scenario as the target's world.
      const name = world === actsOnEtcd ? actsOnEtcd.name : plain.name;
      await beforeCreate?.(name);
      made.push(name);
      events.push(`${label}: ${name === actsOnEtcd.name ? "acts on etcd" : "plain"}`);
      return inner.create(world, version, runId, seed);
    },
  };
}

describe("runs that act on etcd", () => {
  it("run on their own etcd while the others run, when they have one", async () => {
    const events: string[] = [];
    let ownStarted!: () => void;
    const ownHasStarted = new Promise<void>((resolve) => (ownStarted = resolve));
    // The plain runs after the first wait (up to 5 s) for a run on the own etcd to have started:
    // only a suite that runs both batches at once lets that happen before the plain runs end.
    let plainRuns = 0;
    const shared = recording("shared", events, async () => {
      if (++plainRuns === 2) await Promise.race([ownHasStarted, new Promise((r) => setTimeout(r, 5000))]);
    });
    const own = recording("own", events, async () => ownStarted());
    const suite = await runSuite({ scenarios: [plain, actsOnEtcd], versions, factory: shared, seed: 1, concurrency: 2, ownEtcd: Promise.resolve(own) });
    expect(suite.ok).toBe(true);
    expect(suite.runs.map((r) => r.scenario.name)).toEqual([plain.name, plain.name, actsOnEtcd.name, actsOnEtcd.name]);
    expect(own.made).toEqual([actsOnEtcd.name, actsOnEtcd.name]);
    expect(shared.made).toEqual([plain.name, plain.name]);
    // An own-etcd run started before the second plain one.
    expect(events.indexOf("own: acts on etcd")).toBeLessThan(events.lastIndexOf("shared: plain"));
  });

  it("run after the others on the shared store when their etcd fails to start", async () => {
    const events: string[] = [];
    const shared = recording("shared", events);
    const suite = await runSuite({ scenarios: [actsOnEtcd, plain], versions, factory: shared, seed: 1, concurrency: 2, ownEtcd: Promise.reject(new Error("no second etcd")) });
    expect(suite.ok).toBe(true);
    expect(events).toEqual(["shared: plain", "shared: plain", "shared: acts on etcd", "shared: acts on etcd"]);
    // Reported in scenario order all the same.
    expect(suite.runs.map((r) => r.scenario.name)).toEqual([actsOnEtcd.name, actsOnEtcd.name, plain.name, plain.name]);
  });

  it("with one run at a time, the own etcd is not used", async () => {
    const events: string[] = [];
    const own = recording("own", events);
    const suite = await runSuite({ scenarios: [actsOnEtcd, plain], versions, factory: recording("shared", events), seed: 1, concurrency: 1, ownEtcd: Promise.resolve(own) });
    expect(suite.ok).toBe(true);
    expect(own.made).toEqual([]);
    expect(events).toEqual(["shared: plain", "shared: plain", "shared: acts on etcd", "shared: acts on etcd"]);
  });
});
