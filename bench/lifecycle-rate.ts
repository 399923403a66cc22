/**
 * Lifecycle model-based sequences per second, in a process of its own so that the benchmark can
 * run it in a baseline tree too (it only needs `checkLifecycle(profile, {runs, seed})`).
 *
 *   node bin/run-ts.js bench/lifecycle-rate.ts <profile> <rounds> <runs>
 *
 * Prints one JSON line: {"profile": ..., "rates": [...], "verdicts": [...]}. One warm-up round
 * (JIT) is not counted.
 */
import { checkLifecycle } from "../harness/props/lifecycle/run.ts";

const [profile = "3.18.0", roundsArg = "5", runsArg = "1000"] = process.argv.slice(2);
const rounds = Number(roundsArg);
const runs = Number(runsArg);

await checkLifecycle(profile, { runs: 500, seed: 999 });
const rates: number[] = [];
const verdicts: string[] = [];
for (let r = 0; r < rounds; r++) {
  const v = await checkLifecycle(profile, { runs, seed: 1000 + r });
  verdicts.push(v.holds ? "holds" : `fails: ${v.violation}`);
  rates.push((v.runs / v.wallMs) * 1000);
}
process.stdout.write(JSON.stringify({ profile, rates, verdicts }) + "\n");
