/**
 * Differential runs: the same scenario on the model engine and on APISIX's own Lua, same seed,
 * compared by verdict and by a normalised log signature. This is how the model's fidelity is
 * measured rather than assumed.
 */
import { inOrder, PAIRS_ORDER_CHANCE, type GatewayVersion, type TableOrder } from "../gateway/engine.ts";
import { describeSignatureLine, firstDifference, signature, type SignatureLine } from "../gateway/log/signature.ts";
import type { TargetFactory } from "../targets/target.ts";
import type { RunResult } from "./result.ts";
import type { Scenario } from "./scenario.ts";
import { runSuite } from "./suite.ts";

/** The run's warn and error lines by second (the timeline's log lane), as both engines must agree on them. */
export function logSignature(run: RunResult): SignatureLine[] {
  return signature((run.timeline?.events ?? []).flatMap((e) => (e.lane === "log" ? [{ t: e.t, level: e.level, text: e.text }] : [])));
}

export interface Disagreement {
  scenario: string;
  file: string;
  version: string;
  /** verdict: the outcomes differ; log: same outcome, different log signature. */
  kind: "verdict" | "log";
  model: string;
  lua: string;
  /** The first signature line where they part (log) or the failing step (verdict). */
  first: string;
  /**
   * Set when the pair agreed once both engines walked their tables in key order: the disagreement
   * came from LuaJIT's pairs() order, which the model cannot reproduce (README "Known limits").
   */
  chance?: string;
  /** Where they still part in key order (a re-checked real difference). */
  sortedFirst?: string;
}

function outcomeOf(r: RunResult): string {
  return r.failure ? `${r.outcome}: step ${r.failure.step} ${r.failure.message.split("\n")[0]}` : r.outcome;
}

/** How one pair of runs differs, if it does. */
export function compareRuns(model: RunResult, lua: RunResult): Disagreement | undefined {
  const base = { scenario: model.scenario.name, file: model.scenario.file, version: model.version };
  if (model.outcome !== lua.outcome) {
    return { ...base, kind: "verdict", model: model.outcome, lua: lua.outcome, first: `model ${outcomeOf(model)}; lua ${outcomeOf(lua)}` };
  }
  const a = logSignature(model);
  const b = logSignature(lua);
  const d = firstDifference(a, b);
  if (!d) return undefined;
  return { ...base, kind: "log", model: `${a.length} warn/error lines`, lua: `${b.length} warn/error lines`, first: `model: ${describeSignatureLine(d.a)}\nlua:   ${describeSignatureLine(d.b)}` };
}

export interface DiffResult {
  runs: { model: RunResult; lua: RunResult }[];
  disagreements: Disagreement[];
  /** Disagreements the re-check did not take away (or all of them, without one): real model/Lua differences. */
  unexpected: Disagreement[];
  /** How tables were walked in the runs compared. */
  order: TableOrder;
  /** Whether disagreements were run again in key order. */
  rechecked: boolean;
  wallMs: number;
}

export async function runDiff(opts: {
  scenarios: Scenario[];
  model: GatewayVersion[];
  lua: GatewayVersion[];
  factory: TargetFactory;
  seed: number;
  /** How both engines walk tables (default `hash`, LuaJIT's order, the model's stand-in for it). */
  order?: TableOrder;
  /**
   * Run each disagreement again with both engines walking tables in key order, and label it
   * chance when they then agree (default true; moot when `order` is already `sorted`).
   */
  recheck?: boolean;
  concurrency?: number;
  onRun?: (run: RunResult, done: number, total: number) => void;
  /** The re-check in key order starts, for this many disagreements (onRun then counts its runs). */
  onRecheck?: (disagreements: number) => void;
  /** The command is being interrupted: the suites stop (see runSuite); the result is then partial. */
  signal?: AbortSignal;
}): Promise<DiffResult> {
  const started = Date.now();
  const order = opts.order ?? "hash";
  const byName = new Map(opts.model.map((v) => [v.name, v]));
  const pairs = opts.lua.filter((v) => byName.has(v.name));
  let total = pairs.length * 2 * opts.scenarios.length;
  let done = 0;
  const common = { factory: opts.factory, seed: opts.seed, onRun: (r: RunResult) => opts.onRun?.(r, ++done, total) };
  const withConcurrency = { ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}), ...(opts.signal ? { signal: opts.signal } : {}) };
  const both = async (scenarios: Scenario[], versions: GatewayVersion[], walk: TableOrder) => {
    const model = await runSuite({ ...common, ...withConcurrency, scenarios, versions: versions.map((v) => inOrder(byName.get(v.name)!, walk)) });
    const lua = await runSuite({ ...common, ...withConcurrency, scenarios, versions: versions.map((v) => inOrder(v, walk)) });
    // Interrupted: the runs no longer pair up, and nothing is compared.
    return model.interrupted || lua.interrupted ? undefined : model.runs.map((m, i) => ({ model: m, lua: lua.runs[i]! }));
  };
  const interrupted = (): DiffResult => ({ runs: [], disagreements: [], unexpected: [], order, rechecked: false, wallMs: Date.now() - started });
  const runs = await both(opts.scenarios, pairs, order);
  if (!runs) return interrupted();
  const disagreements: Disagreement[] = [];
  const again: { d: Disagreement; scenario: Scenario; version: GatewayVersion }[] = [];
  // runSuite returns scenario-then-version order.
  for (const [i, { model: m, lua: l }] of runs.entries()) {
    const d = compareRuns(m, l);
    if (!d) continue;
    disagreements.push(d);
    again.push({ d, scenario: opts.scenarios[Math.floor(i / pairs.length)]!, version: pairs[i % pairs.length]! });
  }
  const rechecked = order === "hash" && (opts.recheck ?? true) && again.length > 0;
  if (rechecked) {
    done = 0;
    total = again.length * 2;
    opts.onRecheck?.(again.length);
    for (const { d, scenario, version } of again) {
      const sorted = await both([scenario], [version], "sorted");
      if (!sorted) return interrupted();
      const still = compareRuns(sorted[0]!.model, sorted[0]!.lua);
      if (still) d.sortedFirst = still.first;
      else d.chance = PAIRS_ORDER_CHANCE;
    }
  }
  return { runs, disagreements, unexpected: disagreements.filter((d) => !d.chance), order, rechecked, wallMs: Date.now() - started };
}
