/**
 * checkLifecycle: the async model-based test of checker lifecycles for one version profile.
 * fast-check generates command sequences (fc.commands), runs each on a fresh in-process gateway
 * (virtual clock, simulated backends, a fresh in-memory store unless told otherwise) with
 * fc.asyncModelRun, checks the invariants after every command, and shrinks a failure. The shrunk
 * sequence is then replayed once more to record it as readable steps (and scenario steps).
 */
import fc from "fast-check";
import { MemoryStore } from "../../gateway/config/memory-store.ts";
import type { Store } from "../../gateway/config/store.ts";
import type { GatewayVersion } from "../../gateway/engine.ts";
import { modelVersion } from "../../gateway/model-engine.ts";
import { getProfile } from "../../gateway/versions/index.ts";
import type { VersionProfile } from "../../gateway/versions/profile.ts";
import { InprocTarget } from "../../targets/inproc.ts";
import { commandArbs, firstPutRouteArb } from "./commands.ts";
import { describeStep, describeViolation, initialModel, LifecycleViolation, type LifecycleModel, type LifecycleReal, type RecordedStep, type Violation } from "./model.ts";
import { stopOnAbort } from "../stop-on-abort.ts";
import { LIFECYCLE_HOSTS, lifecycleBackends, worldSource } from "./world.ts";

export interface LifecycleOptions {
  runs: number;
  seed: number;
  /**
   * fast-check replay path (from a previous verdict, with the same seed) to go straight to its
   * counterexample; pass the verdict's `replayPath` with it (fast-check's commands need both).
   */
  path?: string;
  replayPath?: string;
  /**
   * Where each sequence's gateway keeps its config. Default: a fresh MemoryStore per sequence.
   * Stores from this factory are not closed here (return one shared store, e.g. a real etcd from
   * acquireStore, and release it yourself); each sequence uses its own key prefix on it.
   */
  store?: () => Store;
  /** Longest command sequence (default 25). */
  maxCommands?: number;
  /** fast-check size of the sequences (default "medium"). */
  size?: fc.SizeForArbitrary;
  /**
   * Known findings to look past: a sequence whose first violation matches this (tested against
   * the violation text, e.g. /timer_create_checker/) counts as passing, so the search reports
   * the next kind of violation, if any.
   */
  skip?: RegExp;
  /**
   * Instances and checks come from a pool of this many instanceArb samples drawn once from the
   * seed (default 256; see worldSource). 0: every command draws its own (slower; the instance
   * contents then shrink as well).
   */
  instancePool?: number;
  /** Stop early (the verdict is then meaningless; the caller checks the signal). */
  signal?: AbortSignal;
}

export interface LifecycleVerdict {
  profile: string;
  /** No sequence broke an invariant. */
  holds: boolean;
  runs: number;
  seed: number;
  /** fast-check path of the counterexample (pass back as `path`, with `replayPath`, to replay it). */
  path?: string;
  /** fast-check's replay hint for the command sequence. */
  replayPath?: string;
  numShrinks?: number;
  /** The shrunk sequence, one readable step per command. */
  counterexample?: string[];
  /** Which invariant broke, and the offending log line or state. */
  violation?: string;
  /** The shrunk sequence as recorded steps and the structured violation (for counterexampleToScenario). */
  trace?: LifecycleTrace;
  /** Kind of store the sequences ran on: "memory" or "etcd". */
  store: "memory" | "etcd";
  /** The `skip` pattern, when known violations were looked past. */
  skip?: string;
  wallMs: number;
}

export interface LifecycleTrace {
  steps: RecordedStep[];
  /** The gateway's log lines, `t` in ms since the sequence started. */
  log?: { t: number; level: string; text: string }[];
  violation?: Violation;
  /** Anything else the replay threw (an Admin API refusal would be a generator bug). */
  error?: string;
}

type Cmd = fc.AsyncCommand<LifecycleModel, LifecycleReal, false>;

let prefixSeq = 0;

/** A model profile (or its name) stands for the model engine at that profile. */
export type LifecycleSubject = GatewayVersion | VersionProfile | string;

function asVersion(v: LifecycleSubject): GatewayVersion {
  if (typeof v === "string") return modelVersion(getProfile(v));
  return "createEngine" in v ? v : modelVersion(v);
}

async function newWorld(version: GatewayVersion, store?: () => Store, seed = 1): Promise<{ model: LifecycleModel; real: LifecycleReal; close: () => Promise<void> }> {
  const own = store === undefined;
  const kv = own ? new MemoryStore("lifecycle in-memory store") : store();
  const prefix = own ? "/apisix" : `/lifecycle-${process.pid}-${Date.now().toString(36)}-${++prefixSeq}`;
  const target = await InprocTarget.create({ version, seed, store: kv, prefix, backends: lifecycleBackends(), hosts: LIFECYCLE_HOSTS, network: "simulated" });
  const real: LifecycleReal = { target, prefix: target.gateway.prefix, modifiedIndex: new Map(), logCursor: 0, seen: new Map(), steps: [] };
  return {
    model: initialModel(),
    real,
    close: async () => {
      await target.close();
      if (own) await kv.close();
    },
  };
}

/** Run commands the way asyncModelRun does (skipping those whose check fails), recording them. */
export async function replay(subject: LifecycleSubject, cmds: Iterable<Cmd>, store?: () => Store, seed = 1): Promise<LifecycleTrace> {
  const world = await newWorld(asVersion(subject), store, seed);
  const trace: LifecycleTrace = { steps: world.real.steps };
  const start = world.real.target.now();
  try {
    for (const c of cmds) {
      if (!c.check(world.model)) continue;
      await c.run(world.model, world.real);
    }
  } catch (e) {
    if (e instanceof LifecycleViolation) trace.violation = e.violation;
    else trace.error = (e as Error).message;
  } finally {
    trace.log = world.real.target.gateway.log.lines.map((l) => ({ t: l.time - start, level: l.level, text: l.text }));
    await world.close();
  }
  return trace;
}

export function lifecycleProperty(subject: LifecycleSubject, opts: Pick<LifecycleOptions, "store" | "maxCommands" | "size" | "skip" | "instancePool" | "replayPath"> & { seed?: number } = {}) {
  const version = asVersion(subject);
  const src = worldSource(opts.seed ?? 0, opts.instancePool);
  return fc.asyncProperty(firstPutRouteArb(src), fc.commands(commandArbs(src), {
    maxCommands: opts.maxCommands ?? 25,
    size: opts.size ?? "medium",
    ...(opts.replayPath !== undefined ? { replayPath: opts.replayPath } : {}),
  }), async (first, cmds) => {
    const world = await newWorld(version, opts.store, opts.seed);
    try {
      // Spreading keeps fast-check's command wrappers, so it still knows which commands ran.
      await fc.asyncModelRun(() => ({ model: world.model, real: world.real }), [first, ...cmds]);
    } catch (e) {
      if (opts.skip && e instanceof LifecycleViolation && opts.skip.test(e.message)) return;
      throw e;
    } finally {
      await world.close();
    }
  });
}

export async function checkLifecycle(subject: LifecycleSubject, opts: LifecycleOptions): Promise<LifecycleVerdict> {
  const started = performance.now();
  const p = asVersion(subject);
  const params: fc.Parameters<[Cmd, Iterable<Cmd>]> = { numRuns: opts.runs, seed: opts.seed };
  if (opts.path !== undefined) params.path = opts.path;
  if (opts.signal) params.plugins = [stopOnAbort(opts.signal)];
  const details = await fc.check(lifecycleProperty(p, opts), params);
  opts.signal?.throwIfAborted();
  const verdict: LifecycleVerdict = {
    profile: p.name,
    holds: !details.failed,
    runs: details.numRuns,
    seed: details.seed,
    store: opts.store ? opts.store().kind : "memory",
    wallMs: 0,
  };
  if (opts.skip) verdict.skip = String(opts.skip);
  if (details.failed && details.counterexample) {
    verdict.numShrinks = details.numShrinks;
    if (details.counterexamplePath) verdict.path = details.counterexamplePath;
    const [first, rest] = details.counterexample;
    const hint = /\/\*replayPath="([^"]*)"\*\//.exec(String(rest))?.[1];
    if (hint !== undefined) verdict.replayPath = hint;
    const trace = await replay(p, [first, ...rest], opts.store, opts.seed);
    verdict.trace = trace;
    verdict.counterexample = trace.steps.map(describeStep);
    if (trace.violation) verdict.violation = describeViolation(trace.violation);
    else if (trace.error) verdict.violation = `error: ${trace.error}`;
    else {
      const e = details.errorInstance;
      verdict.violation = `did not replay: ${e instanceof Error ? e.message : String(e)}`;
    }
  }
  verdict.wallMs = Math.round(performance.now() - started);
  return verdict;
}
