/**
 * The benchmark (a script, not a timed test). Prints medians and ratios; `--write` also writes
 * bench/RESULTS.md.
 *
 *   npm run bench -- [--rounds 5] [--seeds 20] [--write]
 *   npm run bench -- --only html [--rounds 5] [--write]   (only part 4; --write replaces its section)
 *
 * 1. `npm run repro` wall time on real etcd vs the in-memory store (target: < 5 s with etcd).
 * 2. Lifecycle command sequences per second on the in-memory store (target: >= 1,000).
 * 3. Over N seeds on 3.15.0: runs and wall time until the #13101 counterexample is found and
 *    shrunk, and its shrunk length (target: median <= 1 s).
 * 4. The HTML report of the catalogue x the four releases: write time (target <= 1 s) and load
 *    time in headless Chromium (target <= 2 s); the same for two hour-long runs.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";
import { checkLifecycle } from "../harness/props/lifecycle/run.ts";
import { benchHtml, htmlTable } from "./html-bench.ts";
import { benchRepro, reproTable } from "./repro-bench.ts";
import { fmtMs, max, median } from "./stats.ts";

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const ROUNDS = arg("rounds", 5);
const SEEDS = arg("seeds", 20);
const RUNS = 1000;
const log = (s: string): void => void process.stderr.write(s + "\n");

const machine = `node ${process.version}, ${availableParallelism()} CPU(s) (${cpus()[0]?.model ?? "?"}), load ${loadavg().map((x) => x.toFixed(2)).join(" ")}`;
log(`bench: ${machine}`);

const RESULTS = new URL("./RESULTS.md", import.meta.url);
const HTML_HEADING = "HTML report, ";

if (process.argv.includes("--only")) {
  if (process.argv[process.argv.indexOf("--only") + 1] !== "html") throw new Error("--only: the one part that runs alone is html");
  const section = `${htmlTable(await benchHtml(ROUNDS, log))}\n\nMeasured with \`npm run bench -- --only html --rounds ${ROUNDS} --write\` on ${new Date().toISOString().slice(0, 10)}: ${machine}.\n`;
  process.stdout.write(section);
  if (process.argv.includes("--write")) {
    const old = existsSync(RESULTS) ? readFileSync(RESULTS, "utf8") : "# Benchmark results\n\n";
    const cut = old.indexOf(HTML_HEADING);
    writeFileSync(RESULTS, (cut >= 0 ? old.slice(0, cut) : old.trimEnd() + "\n\n") + section);
  }
  process.exit(0);
}

const repro = await benchRepro(ROUNDS, log);

// Warm-up round (JIT), not counted.
await checkLifecycle("3.18.0", { runs: 200, seed: 999 });
const rates: Record<string, number[]> = { "3.18.0": [], suggested: [] };
for (const profile of Object.keys(rates)) {
  for (let r = 0; r < ROUNDS; r++) {
    const v = await checkLifecycle(profile, { runs: RUNS, seed: 1000 + r });
    if (!v.holds) throw new Error(`${profile} failed the lifecycle test: ${v.violation}`);
    rates[profile]!.push((v.runs / v.wallMs) * 1000);
  }
  log(`lifecycle ${profile}: ${rates[profile]!.map((x) => x.toFixed(0)).join(", ")} sequences/s`);
}

const found: { seed: number; runs: number; wallMs: number; length: number; crash: string }[] = [];
for (let seed = 1; seed <= SEEDS; seed++) {
  const v = await checkLifecycle("3.15.0", { runs: RUNS, seed });
  if (v.holds) throw new Error(`3.15.0 seed ${seed}: no counterexample in ${RUNS} runs`);
  const crash = /failed to run (\w+): \S*healthcheck_manager\.lua:(\d+)/.exec(v.violation ?? "");
  found.push({ seed, runs: v.runs, wallMs: v.wallMs, length: v.counterexample?.length ?? 0, crash: crash ? `${crash[1]} :${crash[2]}` : (v.violation ?? "") });
}
log(`3.15.0 counterexamples: ${found.map((f) => `${f.wallMs} ms/${f.length} cmds`).join(", ")}`);

const seqTable = [
  `Lifecycle model test, ${RUNS} sequences per round, ${ROUNDS} rounds, in-memory store, simulated backends:`,
  "",
  "| profile | median sequences/s | min | max |",
  "| --- | --- | --- | --- |",
  ...Object.entries(rates).map(([p, xs]) => `| ${p} | ${median(xs).toFixed(0)} | ${Math.min(...xs).toFixed(0)} | ${max(xs).toFixed(0)} |`),
].join("\n");

const lengths = found.map((f) => f.length);
const crashKinds = [...new Set(found.map((f) => f.crash))].join(", ");
const findTable = [
  `Finding #13101 on 3.15.0 without being told where it is, seeds 1..${SEEDS} (up to ${RUNS} runs each):`,
  "",
  "| measurement | median | max |",
  "| --- | --- | --- |",
  `| runs until the first failing sequence | ${median(found.map((f) => f.runs))} | ${max(found.map((f) => f.runs))} |`,
  `| wall time to find, shrink and replay | ${fmtMs(median(found.map((f) => f.wallMs)))} | ${fmtMs(max(found.map((f) => f.wallMs)))} |`,
  `| shrunk length (commands) | ${median(lengths)} | ${max(lengths)} |`,
  "",
  `Crash found: ${crashKinds}.`,
].join("\n");

const html = await benchHtml(ROUNDS, log);

const text = [
  "# Benchmark results",
  "",
  `Measured with \`npm run bench -- --rounds ${ROUNDS} --seeds ${SEEDS} --write\` on ${new Date().toISOString().slice(0, 10)}: ${machine}.`,
  "",
  reproTable(repro),
  "",
  seqTable,
  "",
  findTable,
  "",
  htmlTable(html),
  "",
].join("\n");
process.stdout.write(text);
if (process.argv.includes("--write")) writeFileSync(RESULTS, text);
