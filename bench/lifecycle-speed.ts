/**
 * Speed of the lifecycle model-based test (harness/props/lifecycle) on the in-memory store.
 *
 *   node bin/run-ts.js bench/lifecycle-speed.ts [--rounds 5] [--runs 1000] [--seeds 9]
 *
 * 1. Throughput: rounds of `runs` sequences on profiles that hold (every sequence runs to its
 *    end), after one warm-up round; prints sequences/s per round and the median.
 * 2. Time to a shrunk counterexample: checkLifecycle on 3.15.0, 3.16.0, 3.17.0 with seeds 1..N,
 *    with and without `skip: /timer_create_checker/`; prints wall time (search + shrink + replay),
 *    runs until the first failure, shrink steps, length and crash line, and the median per profile.
 */
import { availableParallelism, loadavg } from "node:os";
import { coverage, resetCoverage } from "../harness/props/lifecycle/invariants.ts";
import { checkLifecycle } from "../harness/props/lifecycle/run.ts";

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

const ROUNDS = arg("rounds", 5);
const RUNS = arg("runs", 1000);
const SEEDS = arg("seeds", 9);

const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

console.log(`lifecycle speed: node ${process.version}, ${availableParallelism()} CPU(s), load ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);

// Warm-up (JIT, heap): not counted.
for (const profile of ["3.18.0", "suggested"]) await checkLifecycle(profile, { runs: RUNS, seed: 999 });

console.log(`\n## throughput (${RUNS} sequences per round, in-memory store, simulated backends)`);
for (const profile of ["3.18.0", "suggested"]) {
  const rates: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    resetCoverage();
    const v = await checkLifecycle(profile, { runs: RUNS, seed: 1000 + r });
    if (!v.holds) console.log(`  ${profile} round ${r}: FAILS ${v.violation}`);
    const rate = (v.runs / v.wallMs) * 1000;
    rates.push(rate);
    console.log(
      `  ${profile.padEnd(9)} round ${r}: ${v.runs} sequences in ${v.wallMs} ms = ${rate.toFixed(0)} seq/s, ` +
        `${(coverage.steps / v.runs).toFixed(1)} commands/seq (${((coverage.steps / v.wallMs) * 1000).toFixed(0)} commands/s), holds: ${v.holds}`,
    );
  }
  console.log(`  ${profile}: median ${median(rates).toFixed(0)} sequences/s`);
}

console.log(`\n## time to a shrunk counterexample (seeds 1..${SEEDS}, up to ${RUNS} runs each)`);
for (const skip of [undefined, /timer_create_checker/]) {
  for (const profile of ["3.15.0", "3.16.0", "3.17.0"]) {
    const times: number[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) {
      const v = await checkLifecycle(profile, { runs: RUNS, seed, ...(skip ? { skip } : {}) });
      times.push(v.wallMs);
      const line = /failed to run (\w+): \S*healthcheck_manager\.lua:(\d+)/.exec(v.violation ?? "");
      const shape = (v.counterexample ?? []).map((s) => s.replace(/ \{"uri".*$/, (m) => ` <${(m.match(/"name"/g) ?? []).length} instances>`)).join(" | ");
      console.log(`  ${profile} seed ${seed}${skip ? " skip create" : ""}: ${v.holds ? "HOLDS" : `${v.wallMs} ms, failed at run ${v.runs}, ${v.numShrinks} shrinks, ${v.counterexample!.length} commands, ${line ? `${line[1]}:${line[2]}` : v.violation}`}`);
      if (!v.holds) console.log(`      ${shape}`);
    }
    console.log(`  ${profile}${skip ? " (skip create)" : ""}: median ${median(times)} ms to find + shrink`);
  }
}
