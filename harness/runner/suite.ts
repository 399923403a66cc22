import { availableParallelism } from "node:os";
import { sleep } from "../gateway/clock/real-clock.ts";
import type { GatewayVersion } from "../gateway/engine.ts";
import type { Target, TargetFactory } from "../targets/target.ts";
import { interrupted, RunTimeout } from "./abort.ts";
import { ScenarioExecution } from "./execute.ts";
import { runCount, type RunResult, type SuiteResult } from "./result.ts";
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
  /**
   * The command is being interrupted: no new run starts, runs in flight end at once and are left
   * out of the result (they were not observed to the end), and the suite says `interrupted`.
   */
  signal?: AbortSignal;
  /** Per-run watchdog in ms (default: defaultRunTimeout). A run taking longer fails, naming its step. */
  runTimeoutMs?: number;
  /**
   * A factory on an etcd of their own for the runs that act on etcd (see needsEtcdToItself): they
   * then run one at a time alongside the others instead of after them. It may still be starting
   * (the others do not wait for it); if it fails, those runs go after the others as without it.
   */
  ownEtcd?: Promise<TargetFactory>;
}

/** The watchdog's default: a minute, plus the scenario's own waits where they take real time. */
export const DEFAULT_RUN_TIMEOUT_MS = 60_000;

/** How long a target gets to close before the run moves on (the process exit stops the rest). */
const CLOSE_TIMEOUT_MS = 10_000;

export function defaultRunTimeout(scenario: Scenario, realTime: boolean): number {
  const waits = realTime ? scenario.steps.reduce((sum, s) => sum + (s.kind === "wait" ? s.ms : 0), 0) : 0;
  return DEFAULT_RUN_TIMEOUT_MS + waits;
}

/**
 * A scenario that acts on etcd runs alone on its etcd: compaction and revisions are etcd-wide, so
 * a concurrent run's compaction would leave a restarted run's watch behind (and make it reload).
 */
export function needsEtcdToItself(scenario: Scenario): boolean {
  return scenario.steps.some((s) => s.kind === "etcd");
}

/**
 * Every scenario × version on its own fresh target (own gateway, own key prefix), several at once
 * (those that act on etcd one at a time: on their own etcd alongside the others when given one,
 * else after them). Results come back in
 * scenario-then-version order whatever order they finished in.
 */
export async function runSuite(opts: SuiteOptions): Promise<SuiteResult> {
  const started = Date.now();
  const jobs = opts.scenarios.flatMap((scenario) => opts.versions.map((version) => ({ scenario, version })));
  const results: (RunResult | undefined)[] = new Array(jobs.length);
  let done = 0;
  const runBatch = async (indexes: number[], width: number, factory: TargetFactory): Promise<void> => {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < indexes.length && !opts.signal?.aborted) {
        const i = indexes[next++]!;
        const { scenario, version } = jobs[i]!;
        const result = await runOne(scenario, version, factory, opts, i);
        if (!result) continue;
        results[i] = result;
        done += 1;
        opts.onRun?.(result, done, jobs.length);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(width, indexes.length)) }, worker));
  };
  const all = jobs.map((_, i) => i);
  const together = all.filter((i) => !needsEtcdToItself(jobs[i]!.scenario));
  const apart = all.filter((i) => needsEtcdToItself(jobs[i]!.scenario));
  const width = opts.concurrency ?? availableParallelism();
  const ownEtcd = apart.length > 0 && width > 1 ? opts.ownEtcd?.catch(() => undefined) : undefined;
  const alongside = ownEtcd?.then((factory) => (factory ? runBatch(apart, 1, factory).then(() => true) : false));
  const [, ranAlongside] = await Promise.all([runBatch(together, width, opts.factory), alongside ?? false]);
  if (!ranAlongside) await runBatch(apart, 1, opts.factory);
  const runs = results.filter((r): r is RunResult => r !== undefined);
  const suite: SuiteResult = {
    startedAt: new Date(started).toISOString(),
    wallMs: Date.now() - started,
    target: opts.factory.name,
    store: opts.factory.store,
    seed: opts.seed,
    versions: opts.versions.map((v) => v.name),
    engines: [...new Set(opts.versions.map((v) => v.engine))],
    runs,
    ok: runs.length === jobs.length && runs.every((r) => runCount(r) !== "failed"),
  };
  if (opts.signal?.aborted) {
    suite.interrupted = { planned: jobs.length };
    suite.ok = false;
  }
  return suite;
}

/**
 * Why a target made by `factory` cannot run the scenario at all, or undefined. Tick steps stop
 * just before or after a manager tick: only the in-process target's virtual clock can.
 */
export function cannotRun(scenario: Scenario, factory: Pick<TargetFactory, "name" | "realTime">): string | undefined {
  const tick = scenario.steps.find((s) => s.kind === "tick");
  if (factory.realTime && tick) return `tick steps (line ${tick.line}) need the in-process target's virtual clock; the ${factory.name} target runs on real time`;
  return undefined;
}

/** One run under its watchdog; undefined when the command was interrupted before it ended. */
async function runOne(scenario: Scenario, version: GatewayVersion, factory: TargetFactory, opts: SuiteOptions, runId: number): Promise<RunResult | undefined> {
  const wallStart = Date.now();
  const skipped = cannotRun(scenario, factory);
  if (skipped) return { ...runHead(scenario, version, factory, opts), outcome: "skipped", met: false, skipped, bugAssertions: { held: 0, total: 0 }, steps: [], wallMs: 0 };
  let created: { target: Target; prefix: string } | undefined;
  const timeoutMs = opts.runTimeoutMs ?? defaultRunTimeout(scenario, factory.realTime ?? false);
  const watchdog = new AbortController();
  const timer = setTimeout(() => watchdog.abort(new RunTimeout(timeoutMs)), timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, watchdog.signal]) : watchdog.signal;
  try {
    // Not raced against the signal: a factory gives up on it by itself, and a target that did get
    // made must be closed here, not left behind.
    created = await factory.create(scenario, version, runId, opts.seed, signal).catch((e: unknown) => {
      throw e instanceof RunTimeout ? new Error(`${e.message} while setting up the ${factory.name} target`) : e;
    });
    return await new ScenarioExecution(scenario, { version: version.name, engine: version.engine, target: created.target, targetName: factory.name, store: factory.store, seed: opts.seed, prefix: created.prefix, signal }).run();
  } catch (e) {
    if (interrupted(opts.signal)) return undefined;
    return {
      ...runHead(scenario, version, factory, opts),
      outcome: "error",
      met: false,
      bugAssertions: { held: 0, total: 0 },
      failure: { step: -1, kind: "setup", message: `could not set up the target: ${(e as Error).message}` },
      steps: [],
      wallMs: Date.now() - wallStart,
    };
  } finally {
    clearTimeout(timer);
    if (created) await closeWithin(created.target, CLOSE_TIMEOUT_MS);
  }
}

/** What every run's result starts with: which scenario, version, target, and what was expected. */
function runHead(scenario: Scenario, version: GatewayVersion, factory: TargetFactory, opts: SuiteOptions): Pick<RunResult, "scenario" | "version" | "engine" | "target" | "store" | "seed" | "expected"> {
  return {
    scenario: { name: scenario.name, file: scenario.file, tags: scenario.tags, ...(scenario.issue ? { issue: scenario.issue } : {}) },
    version: version.name,
    engine: version.engine,
    target: factory.name,
    store: factory.store,
    seed: opts.seed,
    expected: expectationFor(scenario, version.name),
  };
}

async function closeWithin(target: Target, ms: number): Promise<void> {
  const gaveUp = new AbortController();
  const closing = target.close().catch(() => undefined);
  await Promise.race([closing, sleep(ms, gaveUp.signal).catch(() => undefined)]);
  gaveUp.abort();
}
