import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { ownedTempDir } from "../harness/proc/index.ts";
import { etcdsOf, ownedDirsOf } from "../test/helpers/processes.ts";
import { fmtMs, max, median } from "./stats.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

export interface FlakeBench {
  iterations: number;
  target: string;
  versions: string;
  /** Runs (scenario x version) per iteration. */
  runs: number;
  /** Runs that did not meet their expectation, over all iterations. */
  failed: { iteration: number; run: string; message: string }[];
  /** scenario x version pairs whose outcome was not the same every time. */
  flaky: { run: string; outcomes: Record<string, number> }[];
  /** Iterations that did not exit 0 / left an etcd or a temp dir behind. */
  badExits: number;
  leftovers: number;
  wallMs: number[];
}

interface ResultsJson {
  runs: { scenario: { file: string }; version: string; outcome: string; met: boolean; failure?: { message: string } }[];
}

/**
 * `harness run scenarios/` as a user runs it, `iterations` times, on real etcd: how many runs
 * ever fail, and whether any scenario x version ever gives a different outcome (a flake).
 * After each iteration it also checks that the command left no etcd and no temp dir.
 */
export async function benchFlakes(iterations: number, target: string, versions: string, log: (s: string) => void): Promise<FlakeBench> {
  const r: FlakeBench = { iterations, target, versions, runs: 0, failed: [], flaky: [], badExits: 0, leftovers: 0, wallMs: [] };
  const outcomes = new Map<string, Record<string, number>>();
  const dir = ownedTempDir("bench");
  const out = dir.path;
  try {
    for (let i = 1; i <= iterations; i++) {
      rmSync(join(out, "results.json"), { force: true });
      const t0 = performance.now();
      const sub = execa("node", ["bin/harness.js", "run", "scenarios/", "--versions", versions, "--target", target, "--reporter", "json", "--out", out], { cwd: ROOT, reject: false });
      const res = await sub;
      r.wallMs.push(performance.now() - t0);
      if (res.exitCode !== 0) r.badExits += 1;
      if (etcdsOf(sub.pid!).length > 0 || ownedDirsOf(sub.pid!).length > 0) r.leftovers += 1;
      const json = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as ResultsJson;
      r.runs = json.runs.length;
      for (const run of json.runs) {
        const key = `${run.scenario.file} @ ${run.version}`;
        const seen = outcomes.get(key) ?? {};
        seen[run.outcome] = (seen[run.outcome] ?? 0) + 1;
        outcomes.set(key, seen);
        if (!run.met) r.failed.push({ iteration: i, run: key, message: run.failure?.message ?? run.outcome });
      }
      log(`flakes ${i}/${iterations}: exit ${res.exitCode}, ${json.runs.filter((x) => !x.met).length} of ${json.runs.length} runs failed (${fmtMs(r.wallMs.at(-1)!)})`);
    }
  } finally {
    await dir.remove();
  }
  r.flaky = [...outcomes.entries()].filter(([, o]) => Object.keys(o).length > 1).map(([run, o]) => ({ run, outcomes: o }));
  return r;
}

export function flakeTable(r: FlakeBench): string {
  const lines = [
    `The scenario catalogue run ${r.iterations} times (\`harness run scenarios/ --versions ${r.versions} --target ${r.target}\`, real etcd, ${r.runs} runs each):`,
    "",
    "| measurement | value |",
    "| --- | --- |",
    `| runs | ${r.iterations * r.runs} |`,
    `| runs that did not meet their expectation | ${r.failed.length} |`,
    `| flaky scenario x version pairs (outcome not always the same) | ${r.flaky.length} |`,
    `| iterations that did not exit 0 | ${r.badExits} |`,
    `| iterations that left an etcd or a temp dir behind | ${r.leftovers} |`,
    `| wall time per iteration, median / max | ${fmtMs(median(r.wallMs))} / ${fmtMs(max(r.wallMs))} |`,
  ];
  for (const f of r.flaky) lines.push("", `Flaky: ${f.run}: ${Object.entries(f.outcomes).map(([o, n]) => `${o} ${n}x`).join(", ")}`);
  for (const f of r.failed.slice(0, 10)) lines.push("", `Failed in iteration ${f.iteration}: ${f.run}: ${f.message}`);
  return lines.join("\n");
}
