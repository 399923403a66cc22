import { availableParallelism } from "node:os";
import type { VersionProfile } from "../gateway/versions/profile.ts";
import type { Target } from "../targets/target.ts";
import { ScenarioExecution } from "./execute.ts";
import type { RunResult, SuiteResult } from "./result.ts";
import type { Scenario } from "./scenario.ts";

/** Makes a fresh target for one scenario × version run. */
export interface TargetFactory {
  readonly name: string;
  readonly store: string;
  create(scenario: Scenario, profile: VersionProfile, runId: number): Promise<{ target: Target; prefix: string }>;
}

export interface SuiteOptions {
  scenarios: Scenario[];
  profiles: VersionProfile[];
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
  const jobs = opts.scenarios.flatMap((scenario) => opts.profiles.map((profile) => ({ scenario, profile })));
  const results: RunResult[] = new Array(jobs.length);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const i = next++;
      const { scenario, profile } = jobs[i]!;
      results[i] = await runOne(scenario, profile, opts, i);
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
    versions: opts.profiles.map((p) => p.name),
    runs: results,
    ok: results.every((r) => r.met),
  };
}

async function runOne(scenario: Scenario, profile: VersionProfile, opts: SuiteOptions, runId: number): Promise<RunResult> {
  const wallStart = Date.now();
  let created: { target: Target; prefix: string } | undefined;
  try {
    created = await opts.factory.create(scenario, profile, runId);
    return await new ScenarioExecution(scenario, { version: profile.name, target: created.target, targetName: opts.factory.name, store: opts.factory.store, seed: opts.seed, prefix: created.prefix }).run();
  } catch (e) {
    const expected = scenario.expect[profile.name] ?? scenario.expect.default ?? "passes";
    return {
      scenario: { name: scenario.name, file: scenario.file, tags: scenario.tags, ...(scenario.issue ? { issue: scenario.issue } : {}) },
      version: profile.name,
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
