/**
 * The lifecycle test as a differential run: command sequences generated as checkLifecycle
 * generates them, each replayed on the model and on APISIX's own Lua with the same seed, compared
 * by the invariant they break (if any) and by their normalised log signatures.
 */
import fc from "fast-check";
import type { GatewayVersion } from "../../gateway/engine.ts";
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
}

export interface LifecycleDiff {
  version: string;
  sequences: number;
  seed: number;
  disagreements: LifecycleDisagreement[];
  wallMs: number;
}

function verdictOf(t: LifecycleTrace): string {
  if (t.violation) return `invariant ${t.violation.invariant} (${t.violation.kind})`;
  if (t.error) return `error: ${t.error}`;
  return "holds";
}

/** Compare `sequences` generated sequences on both engines; stops early when `signal` aborts. */
export async function diffLifecycle(opts: { model: GatewayVersion; lua: GatewayVersion; sequences: number; seed: number; maxCommands?: number; signal?: AbortSignal; progress?: (done: number) => void }): Promise<LifecycleDiff> {
  const started = Date.now();
  const src = worldSource(opts.seed);
  const arb = fc.tuple(firstPutRouteArb(src), fc.commands(commandArbs(src), { maxCommands: opts.maxCommands ?? 25, size: "medium" }));
  const samples = fc.sample(arb, { seed: opts.seed, numRuns: opts.sequences });
  const out: LifecycleDiff = { version: opts.lua.name, sequences: 0, seed: opts.seed, disagreements: [], wallMs: 0 };
  for (const [index, [first, rest]] of samples.entries()) {
    if (opts.signal?.aborted) break;
    const cmds = [first, ...rest];
    const m = await replay(opts.model, cmds, undefined, opts.seed);
    const l = await replay(opts.lua, cmds, undefined, opts.seed);
    out.sequences += 1;
    opts.progress?.(out.sequences);
    const base = { index, steps: m.steps.map(describeStep) };
    const [mv, lv] = [verdictOf(m), verdictOf(l)];
    if (mv !== lv) {
      out.disagreements.push({ ...base, model: mv, lua: lv, first: `model: ${m.violation ? describeViolation(m.violation) : mv}\nlua:   ${l.violation ? describeViolation(l.violation) : lv}` });
      continue;
    }
    const d = firstDifference(signature(m.log ?? []), signature(l.log ?? []));
    if (d) out.disagreements.push({ ...base, model: mv, lua: lv, first: `model: ${describeSignatureLine(d.a)}\nlua:   ${describeSignatureLine(d.b)}` });
  }
  out.wallMs = Date.now() - started;
  return out;
}
