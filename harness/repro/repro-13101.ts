import { readFileSync } from "node:fs";
import type { BackendSpec } from "../backends/backend.ts";
import type { Target } from "../targets/target.ts";

/**
 * apache/apisix#13101, step by step as the bug report gives it: PUT the route (the report's own
 * JSON), one chat request, wait 2 s, PATCH the route, wait 3 s, read the error log.
 */

const FIXTURES = new URL("../../fixtures/13101/", import.meta.url);

/** Read once per process: a run of the steps read three files each time (0.24 ms of a lua run). */
const fixtures = new Map<string, string>();

export function fixture(name: string): string {
  let text = fixtures.get(name);
  if (text === undefined) {
    text = readFileSync(new URL(name, FIXTURES), "utf8");
    fixtures.set(name, text);
  }
  return text;
}

/** Both instances of the report go to the openai provider's default host, api.openai.com. */
export const REPRO_BACKENDS: BackendSpec[] = [{ name: "openai", hosts: ["api.openai.com"], mode: { kind: "healthy" } }];

export type Verdict = "REPRODUCED" | "NOT REPRODUCED";

export interface KnownBehaviour {
  verdict: Verdict;
  failures: number;
  lineContains: string[];
}

export function knownBehaviour(version: string): KnownBehaviour | undefined {
  const all = JSON.parse(fixture("expected.json")) as { versions: Record<string, KnownBehaviour> };
  return all.versions[version];
}

/** A timer crash on a nil upstream, as in the report. */
export const CRASH_LINE = /failed to run timer_(?:working_pool_check|create_checker): .*attempt to index local '(?:upstream|instance)' \(a nil value\)/;
const TIMER_FAILURE = /failed to run timer_(?:working_pool_check|create_checker):/;

export interface ReproObservation {
  verdict: Verdict;
  /** `failed to run ...` lines within the 3 s after the PATCH. */
  failures: number;
  firstErrorLine?: string;
  steps: { step: string; status?: number; atMs: number }[];
}

/** `signal` ends the waits early (they reject with its reason). */
export async function reproduce13101(target: Target, signal?: AbortSignal): Promise<ReproObservation> {
  const steps: ReproObservation["steps"] = [];
  const t0 = target.now();
  const mark = (step: string, status?: number): void => {
    steps.push(status === undefined ? { step, atMs: target.now() - t0 } : { step, status, atMs: target.now() - t0 });
  };
  const put = await target.admin("PUT", "/apisix/admin/routes/1", fixture("route.json"));
  mark("PUT /apisix/admin/routes/1", put.status);
  if (put.status >= 300) throw new Error(`the route was refused: ${put.status} ${put.body}`);
  const chat = await target.request("POST", "/ai/chat/completions", { "content-type": "application/json" }, fixture("chat-request.json"));
  mark("POST /ai/chat/completions", chat.status);
  await target.wait(2000, signal);
  mark("wait 2s");
  const patch = await target.admin("PATCH", "/apisix/admin/routes/1", fixture("patch.json"));
  mark("PATCH /apisix/admin/routes/1", patch.status);
  if (patch.status >= 300) throw new Error(`the PATCH was refused: ${patch.status} ${patch.body}`);
  const patchedAt = target.now();
  await target.wait(3000, signal);
  mark("wait 3s");
  const lines = await target.logLines();
  const window = lines.filter((l) => l.time > patchedAt && l.time <= patchedAt + 3000);
  const failures = window.filter((l) => TIMER_FAILURE.test(l.text)).length;
  const crash = lines.find((l) => l.level === "error" && CRASH_LINE.test(l.text));
  const obs: ReproObservation = { verdict: crash ? "REPRODUCED" : "NOT REPRODUCED", failures, steps };
  if (crash) obs.firstErrorLine = crash.text;
  return obs;
}

/** Differences between what was observed and what the version is known to do (empty: as known). */
export function compareWithKnown(obs: ReproObservation, known: KnownBehaviour | undefined): string[] {
  if (!known) return ["no known behaviour recorded for this version"];
  const diffs: string[] = [];
  if (obs.verdict !== known.verdict) diffs.push(`verdict ${obs.verdict}, known ${known.verdict}`);
  if (obs.failures !== known.failures) diffs.push(`${obs.failures} timer failures after the PATCH, known ${known.failures}`);
  for (const s of known.lineContains) if (!obs.firstErrorLine?.includes(s)) diffs.push(`first error line lacks "${s}"`);
  return diffs;
}
