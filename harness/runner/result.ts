/**
 * What a scenario run produces. Reporters (harness/report/) read only these types.
 */
import type { TraceEvent } from "../gateway/trace.ts";

/** What a version is expected to show for a scenario, and what it showed. */
export type Expectation = "reproduces" | "passes";
/**
 * `error`: a step or a plain check failed, so the run says nothing about the bug. `skipped`: the
 * target cannot run the scenario at all (RunResult.skipped says why); it neither meets nor fails.
 */
export type Outcome = Expectation | "error" | "skipped";

export interface StepRecord {
  /** 0-based position in the scenario's steps. */
  index: number;
  /** Step kind: admin, request, wait, backend, etcd, dns, inject, restore, health, call, mark, assert. */
  kind: string;
  /** One line saying what the step did, e.g. `PATCH /apisix/admin/routes/1 -> 200`. */
  summary: string;
  /** Target clock, ms since the run started, when the step began. */
  atMs: number;
  /** Wall time the step took. */
  wallMs: number;
  ok: boolean;
  /** What the step saw: response status and body excerpt, matching log lines, checker state... */
  observed?: unknown;
  /** For assertions: whether it belongs to the bug's signature, and whether it held. */
  bug?: boolean;
  held?: boolean;
  /** Why the step failed (ok false). */
  message?: string;
  expected?: unknown;
}

export interface RunFailure {
  step: number;
  kind: string;
  message: string;
  expected?: unknown;
  observed?: unknown;
}

/** What the gateway did during a run, for the HTML report's timeline. */
export interface RunTimeline {
  /** virtual (in process) or real (serve, external). */
  clock: "virtual" | "real";
  /** Target clock (ms since the epoch) when the run started; event times `t` are ms after it. */
  origin: number;
  events: TraceEvent[];
}

export interface RunResult {
  scenario: { name: string; file: string; issue?: string; tags: string[] };
  version: string;
  /** model or lua */
  engine: string;
  target: string;
  store: string;
  seed: number;
  expected: Expectation;
  outcome: Outcome;
  /** outcome === expected (false for a skipped run, which counts as neither passed nor failed) */
  met: boolean;
  /** Why the target could not run the scenario (outcome skipped). */
  skipped?: string;
  bugAssertions: { held: number; total: number };
  failure?: RunFailure;
  steps: StepRecord[];
  wallMs: number;
  /** Present where the target records one (the in-process target does). */
  timeline?: RunTimeline;
}

export interface SuiteResult {
  startedAt: string;
  wallMs: number;
  target: string;
  store: string;
  seed: number;
  versions: string[];
  engines: string[];
  /** The runs that ended (an interrupted suite leaves out those still going). */
  runs: RunResult[];
  /** Every planned run ended and met its expectation. */
  ok: boolean;
  /** Set when the command was interrupted before every run ended. */
  interrupted?: { planned: number };
}

/** How a run counts in a summary. */
export function runCount(run: Pick<RunResult, "met" | "outcome">): "passed" | "failed" | "skipped" {
  return run.outcome === "skipped" ? "skipped" : run.met ? "passed" : "failed";
}
