/**
 * Write a lifecycle counterexample as a scenario file (the format of scenarios/, checked by
 * harness/runner/load.ts): the world's backends and hosts, the shrunk steps with route bodies
 * inline, and a final `bug: true` assertion that matches the violation, so the finding becomes a
 * regression case that `harness run` replays on any version.
 */
import { stringify } from "yaml";
import type { RecordedStep, Violation } from "./model.ts";
import type { LifecycleVerdict } from "./run.ts";
import { LIFECYCLE_BACKENDS, LIFECYCLE_HOSTS } from "./world.ts";

export interface ScenarioOptions {
  /** Scenario name (default: "lifecycle counterexample on <profile> (seed <seed>)"). */
  name?: string;
  /** Versions expected to reproduce it (default: the verdict's profile). */
  reproducesOn?: string[];
  /** Extra tags. */
  tags?: string[];
}

/** Any timer crash, for the plain check that a passing version logs none. */
export const CRASH_PATTERN = "failed to run|attempt to index";

/**
 * A pattern for the crash line that holds on every release with the same fault (no line
 * numbers) and in every pool order: the timer walks its pool in hash order, so which entry fails
 * first, and which nil it indexes, depends on the run's seed.
 */
export function crashPattern(line: string): string {
  const m = /failed to run (\w+): .*?attempt to index (?:local|field|global) '[^']+' \(a nil value\)/.exec(line);
  if (m) return `failed to run ${m[1]}: .*attempt to index \\w+ '[^']+' \\(a nil value\\)`;
  const t = /failed to run (\w+)/.exec(line);
  if (t) return `failed to run ${t[1]}`;
  return CRASH_PATTERN;
}

function duration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function toStep(s: RecordedStep): Record<string, unknown> {
  switch (s.kind) {
    case "admin": {
      const a: Record<string, unknown> = { method: s.method, path: s.path };
      if (s.body !== undefined) a.body = s.body;
      a.status = s.status;
      return { admin: a };
    }
    case "request":
      return { request: { method: s.method, path: s.path, body: s.body } };
    case "wait":
      return { wait: duration(s.ms) };
    case "backend":
      return { backend: { name: s.name, mode: s.mode } };
    case "etcd":
      return { etcd: s.action };
  }
}

function assertions(v: Violation): Record<string, unknown>[] {
  switch (v.invariant) {
    case 1:
      return [
        { assert: { bug: true, note: `a timer crashed: ${v.line.replace(/^.*?\[lua\] /, "")}`, log: { matches: crashPattern(v.line), level: "error", atLeast: 1 } } },
        { assert: { when: "passes", note: "a version without the bug logs no timer crash", log: { matches: CRASH_PATTERN, level: "error", absent: true } } },
      ];
    case 2: {
      const ref = { route: v.route, instance: v.instance };
      const bug = v.kind === "missing" ? { ...ref, exists: false } : v.kind === "stale" ? { ...ref, current: false } : { ...ref, exists: true };
      const fine = v.kind === "leftover" ? { ...ref, exists: false } : { ...ref, current: true };
      return [
        { assert: { bug: true, note: v.detail, checkers: [bug] } },
        { assert: { when: "passes", note: "settled: the checker is where it belongs", checkers: [fine] } },
      ];
    }
    case 3:
      return [{ assert: { bug: true, note: v.detail, checkers: [{ route: v.route, instance: v.instance, unhealthy: 0 }] } }];
  }
}

/** The resolver entries the steps mention (backend names, probe hosts), plus every backend's. */
function usedHosts(steps: RecordedStep[]): Record<string, string | string[]> {
  const text = JSON.stringify(steps);
  const backendHosts = new Set<string>(LIFECYCLE_BACKENDS.map((b) => b.host));
  return Object.fromEntries(Object.entries(LIFECYCLE_HOSTS).filter(([h]) => backendHosts.has(h) || text.includes(`"${h}"`)));
}

/** The shrunk counterexample of a failing verdict as scenario YAML. */
export function counterexampleToScenario(verdict: LifecycleVerdict, opts: ScenarioOptions = {}): string {
  const trace = verdict.trace;
  if (verdict.holds || !trace?.violation) throw new Error(`no counterexample to write: ${verdict.holds ? `${verdict.profile} holds` : verdict.violation ?? "no violation recorded"}`);
  const v = trace.violation;
  const expect: Record<string, string> = { default: "passes" };
  for (const p of opts.reproducesOn ?? [verdict.profile]) expect[p] = "reproduces";
  const doc = {
    name: opts.name ?? `lifecycle counterexample on ${verdict.profile} (seed ${verdict.seed})`,
    tags: ["lifecycle", "generated", `invariant-${v.invariant}`, ...(opts.tags ?? [])],
    description:
      `Found by checkLifecycle("${verdict.profile}", {seed: ${verdict.seed}${verdict.path ? `, path: "${verdict.path}"` : ""}${verdict.skip ? `, skip: ${verdict.skip}` : ""}}) ` +
      `after ${verdict.runs} run(s), shrunk ${verdict.numShrinks ?? 0} time(s) to ${trace.steps.length} step(s).\n` +
      `Violation: ${verdict.violation}\n`,
    hosts: usedHosts(trace.steps),
    backends: Object.fromEntries(LIFECYCLE_BACKENDS.map((b) => [b.name, { hosts: [b.host] }])),
    steps: [...trace.steps.map(toStep), ...assertions(v)],
    expect,
  };
  const header = `# Generated by harness/props/lifecycle (counterexampleToScenario); edit freely.\n`;
  return header + stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false });
}
