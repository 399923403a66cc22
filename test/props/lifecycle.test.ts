import { modelVersion, type ModelEngine } from "../../harness/gateway/model-engine.ts";
import fc from "fast-check";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findEtcdBinary } from "../../harness/etcd/local-etcd.ts";
import { acquireStore, type ProvisionedStore } from "../../harness/etcd/provision.ts";
import { MemoryStore } from "../../harness/gateway/config/memory-store.ts";
import { getProfile } from "../../harness/gateway/versions/index.ts";
import { coverage, resetCoverage, checkInvariants, resourcePath } from "../../harness/props/lifecycle/invariants.ts";
import { initialModel, type LifecycleReal, type RecordedStep } from "../../harness/props/lifecycle/model.ts";
import { checkLifecycle, type LifecycleVerdict } from "../../harness/props/lifecycle/run.ts";
import { counterexampleToScenario } from "../../harness/props/lifecycle/to-scenario.ts";
import { firstPutRouteArb, Advance, BackendDown, Request } from "../../harness/props/lifecycle/commands.ts";
import { checksArb, instanceSpecArb, LIFECYCLE_HOSTS, lifecycleBackends, namedInstance, routeBody, routeText, worldSource } from "../../harness/props/lifecycle/world.ts";
import { loadScenario } from "../../harness/runner/load.ts";
import { runSuite } from "../../harness/runner/suite.ts";
import { InprocFactory, InprocTarget } from "../../harness/targets/inproc.ts";

const SEED = 13101;
/** The crash line of each release: which timer, the `failed to run` line, the index line. */
const CREATE = { "3.15.0": [278, 184], "3.16.0": [274, 180], "3.17.0": [274, 180] } as const;
const WORKING = { "3.15.0": [292, 242], "3.16.0": [288, 238], "3.17.0": [288, 238] } as const;

function crashLine(timer: "timer_create_checker" | "timer_working_pool_check", [failed, index]: readonly [number, number]): RegExp {
  return new RegExp(
    `^invariant 1 \\(no timer crash\\): .*\\[error\\].*healthcheck_manager\\.lua:${failed}: failed to run ${timer}: .*healthcheck_manager\\.lua:${index}: attempt to index local 'upstream' \\(a nil value\\), context: ngx\\.timer$`,
  );
}

const isConfigChange = (s: RecordedStep) => s.kind === "etcd" || (s.kind === "admin" && s.status < 300);
const instanceCount = (s: RecordedStep) => (s.kind === "admin" && s.method === "PUT" ? ((s.body as { plugins: { "ai-proxy-multi": { instances: unknown[] } } }).plugins["ai-proxy-multi"].instances.length) : undefined);

/** The counterexample has a request and, after it, a config change. */
function configChangeAfterRequest(v: LifecycleVerdict): boolean {
  const steps = v.trace!.steps;
  const req = steps.findIndex((s) => s.kind === "request");
  return req >= 0 && steps.slice(req + 1).some(isConfigChange);
}

/** After the request, the route is written with fewer instances than it had. */
function dropsAnInstance(v: LifecycleVerdict): boolean {
  const steps = v.trace!.steps;
  const req = steps.findIndex((s) => s.kind === "request");
  const before = steps.slice(0, req).map(instanceCount).filter((n) => n !== undefined).at(-1)!;
  return steps.slice(req + 1).some((s) => (instanceCount(s) ?? Infinity) < before);
}

describe("the commands' request bodies", () => {
  it("routeText is JSON.stringify of the route body, for named instances and instances changed after", () => {
    const specs = fc.sample(instanceSpecArb, { seed: 7, numRuns: 200 });
    const checks = fc.sample(checksArb, { seed: 8, numRuns: 50 });
    specs.forEach((spec, i) => {
      const a = namedInstance(spec, `${spec.backend}-${i}`);
      expect(a).toEqual({ ...spec.body, name: `${spec.backend}-${i}` });
      const b = { ...namedInstance(specs[(i + 1) % specs.length]!, 'n"\\u00e9-' + i), checks: checks[i % checks.length]! };
      for (const [instances, desc] of [[[a], undefined], [[a, b], "d \"q\" \u2028"], [[b, a, b], ""]] as const) {
        expect(routeText("2", [...instances], desc)).toBe(JSON.stringify(routeBody("2", [...instances], desc)));
      }
    });
  });
});

describe("checkLifecycle finds #13101 on 3.15.0 and 3.16.0", () => {
  for (const profile of ["3.15.0", "3.16.0"] as const) {
    it(`${profile}: a timer crash after a config change that follows a request, shrunk to <= 5 commands`, async () => {
      const v = await checkLifecycle(profile, { runs: 200, seed: SEED });
      expect(v.holds).toBe(false);
      expect(v.counterexample!.length).toBeLessThanOrEqual(5);
      expect(configChangeAfterRequest(v), v.counterexample!.join("\n")).toBe(true);
      // The shortest form: the route object is replaced after the request queued the checkers and
      // before the creation timer ran (the model's second crash point; scenarios/13101-create-timer-crash.yaml).
      expect(v.violation).toMatch(crashLine("timer_create_checker", CREATE[profile]));
      expect(v.counterexample![0]).toMatch(/^PUT \/apisix\/admin\/routes\/[12] \{"uri":/);
      expect(v.counterexample!.at(-1)).toMatch(/^advance \d+ ms$/);
      expect(v.numShrinks).toBeGreaterThan(0);
      // seed + path replay straight to the same counterexample.
      const again = await checkLifecycle(profile, { runs: 200, seed: SEED, path: v.path!, replayPath: v.replayPath! });
      expect(again.runs).toBe(1);
      expect(again.counterexample).toEqual(v.counterexample);
      expect(again.violation).toEqual(v.violation);
    });

    it(`${profile}: looking past the creation-timer crash finds the bug report's crash loop (PUT, request, wait, change, wait)`, async () => {
      const v = await checkLifecycle(profile, { runs: 300, seed: SEED, skip: /timer_create_checker/ });
      expect(v.holds).toBe(false);
      expect(v.violation).toMatch(crashLine("timer_working_pool_check", WORKING[profile]));
      expect(v.counterexample!.length).toBeLessThanOrEqual(5);
      expect(v.trace!.steps.map((s) => s.kind)).toEqual(["admin", "request", "wait", v.trace!.steps[3]!.kind, "wait"]);
      expect(isConfigChange(v.trace!.steps[3]!)).toBe(true);
    });
  }
});

describe("checkLifecycle on 3.17.0: the removed-instance crash", () => {
  it("default search: the creation timer indexes nil at :180 for an instance removed after a request", async () => {
    const v = await checkLifecycle("3.17.0", { runs: 300, seed: SEED });
    expect(v.holds).toBe(false);
    expect(v.violation).toMatch(crashLine("timer_create_checker", CREATE["3.17.0"]));
    expect(v.counterexample!.length).toBeLessThanOrEqual(5);
    expect(dropsAnInstance(v), v.counterexample!.join("\n")).toBe(true);
  });

  it("looking past the creation timer: timer_working_pool_check fails at :238 once the instance is gone", async () => {
    const v = await checkLifecycle("3.17.0", { runs: 300, seed: SEED, skip: /timer_create_checker/ });
    expect(v.holds).toBe(false);
    expect(v.violation).toMatch(crashLine("timer_working_pool_check", WORKING["3.17.0"]));
    expect(v.counterexample!.length).toBeLessThanOrEqual(5);
    expect(dropsAnInstance(v), v.counterexample!.join("\n")).toBe(true);
  });
});

describe("3.18.0 and the suggested fix hold", () => {
  for (const profile of ["3.18.0", "suggested"]) {
    it(`${profile}: no invariant breaks in 400 sequences, and the invariants were exercised`, async () => {
      resetCoverage();
      const v = await checkLifecycle(profile, { runs: 400, seed: SEED });
      expect(v.violation).toBeUndefined();
      expect(v.holds).toBe(true);
      expect(v.runs).toBe(400);
      // Not vacuous: settled routes with current checkers, and down backends seen unhealthy.
      expect(coverage.settled).toBeGreaterThan(50);
      expect(coverage.currentCheckers).toBeGreaterThan(100);
      expect(coverage.downDetected).toBeGreaterThan(10);
    });
  }
});

describe("the invariants catch what they are about", () => {
  async function world(): Promise<{ target: InprocTarget; real: LifecycleReal; model: ReturnType<typeof initialModel> }> {
    const target = await InprocTarget.create({ version: modelVersion(getProfile("3.18.0")), store: new MemoryStore(), backends: lifecycleBackends(), hosts: LIFECYCLE_HOSTS, network: "simulated" });
    return { target, model: initialModel(), real: { target, prefix: "/apisix", modifiedIndex: new Map(), logCursor: 0, seen: new Map(), steps: [] } };
  }
  const [put] = fc.sample(firstPutRouteArb(worldSource(SEED)), { seed: SEED, numRuns: 1 });

  it("invariant 2: a settled route whose checker vanished", async () => {
    const { target, model, real } = await world();
    try {
      await put!.run(model, real);
      await new Request(0).run(model, real);
      await new Advance(2000).run(model, real);
      const id = [...model.routes.keys()][0]!;
      (target.gateway.engine as ModelEngine).manager.workingPool.delete(resourcePath("/apisix", id, 1));
      expect(await checkInvariants(model, real)).toMatchObject({ invariant: 2, kind: "missing", route: id, instance: 1 });
    } finally {
      await target.close();
    }
  });

  it("invariant 3: a checker that never sees its backend go down", async () => {
    const { target, model, real } = await world();
    try {
      await put!.run(model, real);
      await new Request(0).run(model, real);
      await new Advance(2000).run(model, real);
      // Tell the model only: the backend still answers, so its checker stays healthy.
      const backend = [...model.routes.values()][0]!.backends[0]!;
      model.down.set(backend, model.now);
      await new Advance(1000).run(model, real);
      await expect(new Advance(20_000).run(model, real)).rejects.toThrow(/invariant 3 \(down backend seen unhealthy\): .* still healthy/);
      // The same with the backend really down holds.
      const again = await world();
      try {
        await put!.run(again.model, again.real);
        await new Request(0).run(again.model, again.real);
        await new Advance(2000).run(again.model, again.real);
        await new BackendDown(backend).run(again.model, again.real);
        await new Advance(20_000).run(again.model, again.real);
      } finally {
        await again.target.close();
      }
    } finally {
      await target.close();
    }
  });
});

describe("a counterexample becomes a scenario that replays", () => {
  const dir = mkdtempSync(join(tmpdir(), "lifecycle-scenario-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const [profile, skip] of [["3.15.0", undefined], ["3.17.0", /timer_create_checker/]] as const) {
    it(`${profile}${skip ? " (working-pool crash)" : ""}: loadScenario accepts it; runSuite: reproduces on ${profile}, passes on 3.18.0`, async () => {
      const v = await checkLifecycle(profile, { runs: 300, seed: SEED, ...(skip ? { skip } : {}) });
      expect(v.holds).toBe(false);
      const file = join(dir, `lifecycle-${profile}.yaml`);
      writeFileSync(file, counterexampleToScenario(v));
      const scenario = loadScenario(file);
      expect(scenario.expect).toEqual({ default: "passes", [profile]: "reproduces" });
      expect(scenario.steps.filter((s) => s.kind !== "assert")).toHaveLength(v.counterexample!.length);
      const bug = scenario.steps.find((s) => s.kind === "assert" && s.assertion.bug);
      // Which entry fails first (and what it indexes) depends on the pool's order: the pattern does not.
      expect(bug).toMatchObject({ assertion: { log: { matches: expect.stringMatching(/^failed to run timer_\w+: \.\*attempt to index/), atLeast: 1 } } });
      const pattern = new RegExp((bug as { assertion: { log: { matches: string } } }).assertion.log.matches);
      for (const nil of ["local 'upstream'", "local 'instance'"]) expect(pattern.test(`failed to run ${/timer_\w+/.exec(pattern.source)![0]}: /usr/local/apisix/apisix/x.lua:1: attempt to index ${nil} (a nil value)`)).toBe(true);
      const suite = await runSuite({
        scenarios: [scenario],
        versions: [modelVersion(getProfile(profile)), modelVersion(getProfile("3.18.0"))],
        factory: new InprocFactory(() => new MemoryStore(), "memory", "simulated"),
        seed: SEED,
        concurrency: 1,
      });
      expect(suite.runs.map((r) => [r.version, r.outcome, r.met, r.failure?.message])).toEqual([
        [profile, "reproduces", true, undefined],
        ["3.18.0", "passes", true, undefined],
      ]);
    });
  }
});

describe("on a real etcd", () => {
  let provisioned: ProvisionedStore | undefined;
  const noBinary = findEtcdBinary().path === undefined && !process.env.ETCD_ENDPOINTS;
  beforeAll(async () => {
    if (!noBinary) provisioned = await acquireStore({ log: () => undefined });
  }, 30_000);
  afterAll(async () => {
    await provisioned?.release();
  });

  it("3.15.0: 20 runs find the crash on etcd too", async (ctx) => {
    if (noBinary) ctx.skip("no etcd binary on PATH and no ETCD_ENDPOINTS");
    if (provisioned!.kind !== "etcd") ctx.skip(`no etcd could be started: ${provisioned!.reason}`);
    const v = await checkLifecycle("3.15.0", { runs: 20, seed: SEED, store: () => provisioned!.store });
    expect(v.store).toBe("etcd");
    expect(v.holds).toBe(false);
    expect(v.violation).toMatch(crashLine("timer_create_checker", CREATE["3.15.0"]));
    expect(v.counterexample!.length).toBeLessThanOrEqual(5);
    expect(configChangeAfterRequest(v)).toBe(true);
  }, 60_000);
});
