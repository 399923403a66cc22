import { availableParallelism } from "node:os";
import type { GatewayVersion } from "../gateway/engine.ts";
import type { Target, TargetFactory } from "../targets/target.ts";
import { ScenarioExecution } from "./execute.ts";
import type { RunResult, SuiteResult } from "./result.ts";
import { expectationFor, type Scenario } from "./scenario.ts";

export type { TargetFactory } from "../targets/target.ts";

export interface SuiteOptions {
  scenarios: Scenario[];
  versions: GatewayVersion[];
  factory: TargetFactory;
  seed: number;
  /** How many runs at once (default: the core count). */
  concurrency?: number;
  /** Called when each run ends, in completion order. */
  onRun?: (run: RunResult, done: number, total: number) => void;
}

/**
 * Every scenario × version on its own fresh target (own gateway, own key prefix), several at once.
 * Results come back in scenario-then-version order whatever order they finished in.
 */
export async function runSuite(opts: SuiteOptions): Promise<SuiteResult> {
  const started = Date.now();
  const jobs = opts.scenarios.flatMap((scenario) => opts.versions.map((version) => ({ scenario, version })));
  const results: RunResult[] = new Array(jobs.length);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const i = next++;
      const { scenario, version } = jobs[i]!;
      results[i] = await runOne(scenario, version, opts, i);
      done += 1;
      opts.onRun?.(results[i]!, done, jobs.length);
    }
  };
  const width = Math.max(1, Math.min(opts.concurrency ?? availableParallelism(), jobs.length));
  await Promise.all(Array.from({ length: width }, worker));
  return {
    startedAt: new Date(started).toISOString(),
    wallMs: Date.now() - started,
    target: opts.factory.name,
    store: opts.factory.store,
    seed: opts.seed,
    versions: opts.versions.map((v) => v.name),
    engines: [...new Set(opts.versions.map((v) => v.engine))],
    runs: results,
    ok: results.every((r) => r.met),
  };
}

async function runOne(scenario: Scenario, version: GatewayVersion, opts: SuiteOptions, runId: number): Promise<RunResult> {
  const wallStart = Date.now();
  let created: { target: Target; prefix: string } | undefined;
  try {
    created = await opts.factory.create(scenario, version, runId, opts.seed);
    return await new ScenarioExecution(scenario, { version: version.name, engine: version.engine, target: created.target, targetName: opts.factory.name, store: opts.factory.store, seed: opts.seed, prefix: created.prefix }).run();
  } catch (e) {
    const expected = expectationFor(scenario, version.name);
    return {
      scenario: { name: scenario.name, file: scenario.file, tags: scenario.tags, ...(scenario.issue ? { issue: scenario.issue } : {}) },
      version: version.name,
      engine: version.engine,
      target: opts.factory.name,
      store: opts.factory.store,
      seed: opts.seed,
      expected,
      outcome: "error",
      met: false,
      bugAssertions: { held: 0, total: 0 },
      failure: { step: -1, kind: "setup", message: `could not set up the target: ${(e as Error).message}` },
      steps: [],
      wallMs: Date.now() - wallStart,
    };
  } finally {
    await created?.target.close();
  }
}
