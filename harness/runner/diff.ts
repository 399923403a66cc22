/**
 * Differential runs: the same scenario on the model engine and on APISIX's own Lua, same seed,
 * compared by verdict and by a normalised log signature. This is how the model's fidelity is
 * measured rather than assumed.
 */
import type { GatewayVersion } from "../gateway/engine.ts";
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
  /** Set when this disagreement is a known limit of the model (listed in the README). */
  knownLimit?: string;
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

/** A disagreement the model is known to have, with the reason (README "Known limits of the model"). */
export interface KnownLimit {
  /** Scenario file name (basename) and versions it applies to (empty: all). */
  scenario: string;
  versions?: string[];
  kind: Disagreement["kind"];
  reason: string;
}

export interface DiffResult {
  runs: { model: RunResult; lua: RunResult }[];
  disagreements: Disagreement[];
  /** Disagreements that are not known limits. */
  unexpected: Disagreement[];
  wallMs: number;
}

export async function runDiff(opts: {
  scenarios: Scenario[];
  model: GatewayVersion[];
  lua: GatewayVersion[];
  factory: TargetFactory;
  seed: number;
  knownLimits?: KnownLimit[];
  concurrency?: number;
  onRun?: (run: RunResult, done: number, total: number) => void;
  /** The command is being interrupted: the suites stop (see runSuite); the result is then partial. */
  signal?: AbortSignal;
}): Promise<DiffResult> {
  const started = Date.now();
  const byName = new Map(opts.model.map((v) => [v.name, v]));
  const pairs = opts.lua.filter((v) => byName.has(v.name));
  const total = pairs.length * 2 * opts.scenarios.length;
  let done = 0;
  const common = { scenarios: opts.scenarios, factory: opts.factory, seed: opts.seed, onRun: (r: RunResult) => opts.onRun?.(r, ++done, total) };
  const withConcurrency = { ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}), ...(opts.signal ? { signal: opts.signal } : {}) };
  const model = await runSuite({ ...common, ...withConcurrency, versions: pairs.map((v) => byName.get(v.name)!) });
  const lua = await runSuite({ ...common, ...withConcurrency, versions: pairs });
  // Interrupted: the runs no longer pair up, and nothing is compared.
  if (model.interrupted || lua.interrupted) return { runs: [], disagreements: [], unexpected: [], wallMs: Date.now() - started };
  const runs = model.runs.map((m, i) => ({ model: m, lua: lua.runs[i]! }));
  const disagreements: Disagreement[] = [];
  for (const { model: m, lua: l } of runs) {
    const d = compareRuns(m, l);
    if (!d) continue;
    const base = m.scenario.file.split("/").pop();
    const limit = (opts.knownLimits ?? []).find((k) => k.scenario === base && k.kind === d.kind && (!k.versions || k.versions.includes(d.version)));
    if (limit) d.knownLimit = limit.reason;
    disagreements.push(d);
  }
  return { runs, disagreements, unexpected: disagreements.filter((d) => !d.knownLimit), wallMs: Date.now() - started };
}
