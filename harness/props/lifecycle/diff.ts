/**
 * The lifecycle test as a differential run: command sequences generated as checkLifecycle
 * generates them, each replayed on the model and on APISIX's own Lua with the same seed, compared
 * by the invariant they break (if any) and by their normalised log signatures.
 */
import fc from "fast-check";
import { inOrder, PAIRS_ORDER_CHANCE, type GatewayVersion } from "../../gateway/engine.ts";
import { describeSignatureLine, firstDifference, signature } from "../../gateway/log/signature.ts";
import { commandArbs, firstPutRouteArb } from "./commands.ts";
import { describeStep, describeViolation } from "./model.ts";
import { replay, type LifecycleTrace } from "./run.ts";
import { worldSource } from "./world.ts";

export interface LifecycleDisagreement {
  /** 0-based index of the sequence among those generated from the seed. */
  index: number;
  /** The commands as both ran them (the model's record). */
  steps: string[];
  model: string;
  lua: string;
  /** The first signature line where the logs part, or the differing verdicts. */
  first: string;
  /** Set when the sequence agreed once both engines walked their tables in key order. */
  chance?: string;
  /** Where they still part in key order (a re-checked real difference). */
  sortedFirst?: string;
}

export interface LifecycleDiff {
  version: string;
  sequences: number;
  seed: number;
  disagreements: LifecycleDisagreement[];
  /** Disagreements the re-check did not take away (all of them without one): real differences. */
  differ: number;
  rechecked: boolean;
  wallMs: number;
}

function verdictOf(t: LifecycleTrace): string {
  if (t.violation) return `invariant ${t.violation.invariant} (${t.violation.kind})`;
  if (t.error) return `error: ${t.error}`;
  return "holds";
}

/** How one sequence's two replays part: the verdicts, else the first log line. */
function compareTraces(m: LifecycleTrace, l: LifecycleTrace): { model: string; lua: string; first: string } | undefined {
  const [mv, lv] = [verdictOf(m), verdictOf(l)];
  if (mv !== lv) return { model: mv, lua: lv, first: `model: ${m.violation ? describeViolation(m.violation) : mv}\nlua:   ${l.violation ? describeViolation(l.violation) : lv}` };
  const d = firstDifference(signature(m.log ?? []), signature(l.log ?? []));
  return d ? { model: mv, lua: lv, first: `model: ${describeSignatureLine(d.a)}\nlua:   ${describeSignatureLine(d.b)}` } : undefined;
}

/**
 * Compare `sequences` generated sequences on both engines; stops early when `signal` aborts.
 * A sequence that disagrees is replayed again with both engines walking tables in key order
 * (unless `recheck` is false), and labelled chance when it then agrees.
 */
export async function diffLifecycle(opts: { model: GatewayVersion; lua: GatewayVersion; sequences: number; seed: number; recheck?: boolean; maxCommands?: number; signal?: AbortSignal; progress?: (done: number) => void }): Promise<LifecycleDiff> {
  const started = Date.now();
  const src = worldSource(opts.seed);
  const arb = fc.tuple(firstPutRouteArb(src), fc.commands(commandArbs(src), { maxCommands: opts.maxCommands ?? 25, size: "medium" }));
  const samples = fc.sample(arb, { seed: opts.seed, numRuns: opts.sequences });
  const recheck = opts.recheck ?? true;
  const sorted = { model: inOrder(opts.model, "sorted"), lua: inOrder(opts.lua, "sorted") };
  const out: LifecycleDiff = { version: opts.lua.name, sequences: 0, seed: opts.seed, disagreements: [], differ: 0, rechecked: false, wallMs: 0 };
  for (const [index, [first, rest]] of samples.entries()) {
    if (opts.signal?.aborted) break;
    const cmds = [first, ...rest];
    const m = await replay(opts.model, cmds, undefined, opts.seed);
    const l = await replay(opts.lua, cmds, undefined, opts.seed);
    out.sequences += 1;
    opts.progress?.(out.sequences);
    const d = compareTraces(m, l);
    if (!d) continue;
    const x: LifecycleDisagreement = { index, steps: m.steps.map(describeStep), ...d };
    // Already in key order (a run with --order sorted): nothing left to re-check.
    if (recheck && opts.model !== sorted.model) {
      out.rechecked = true;
      const [ms, ls] = [await replay(sorted.model, cmds, undefined, opts.seed), await replay(sorted.lua, cmds, undefined, opts.seed)];
      const again = compareTraces(ms, ls);
      if (again) x.sortedFirst = again.first;
      else x.chance = PAIRS_ORDER_CHANCE;
    }
    if (!x.chance) out.differ += 1;
    out.disagreements.push(x);
  }
  out.wallMs = Date.now() - started;
  return out;
}
