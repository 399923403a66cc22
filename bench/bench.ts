/**
 * The benchmark (a script, not a timed test). Prints medians and ratios; `--write` also writes
 * bench/RESULTS.md.
 *
 *   npm run bench -- [--rounds 5] [--seeds 20] [--baseline <git ref>] [--flakes 50] [--write]
 *   npm run bench -- --only html|lua|flakes|processes|etcd [--rounds 5] [--flakes 50] [--baseline <git ref>] [--write]
 *     (only that part; --write replaces its section; processes = part 1's wall times alone)
 *
 * 1. Whole processes, as a user runs them: `node -e 0`, `harness --help`, a bad-usage exit,
 *    `harness repro` on a real etcd it starts (cold) and on the in-memory store, `harness run
 *    scenarios/ --versions all`: wall-time medians and their ratio to `node -e 0`; the peak
 *    memory of `harness repro`. With --baseline, the same in that commit's tree (a temp copy
 *    sharing node_modules), alternating with this tree within each round: after/before ratios.
 * 2. Lifecycle command sequences per second on the in-memory store (3.18.0, in the baseline too,
 *    and suggested), each round in a fresh process.
 * 3. The repro in process (etcd start included) vs the in-memory store.
 * 4. Over N seeds on 3.15.0: runs and wall time until the #13101 counterexample is found and
 *    shrunk, and its shrunk length.
 * 5. The HTML report of the catalogue x the four releases: write time (target <= 1 s) and load
 *    time in headless Chromium (target <= 2 s); the same for two hour-long runs.
 * 6. The lua engine: one #13101 run in process (target <= 20 ms median) and the catalogue x 4
 *    releases as a process (target <= 10 s).
 * 7. The scenario catalogue (x every profile) run --flakes times through the CLI on real etcd:
 *    runs that failed, scenario x version pairs whose outcome changed between iterations
 *    (target: 0 of both), and iterations that left an etcd or a temp dir (issue 9). --flakes 0
 *    leaves it out of the full run.
 * 8. What real etcd costs `harness run`: etcd's and the client's CPU per call, the calls per
 *    catalogue run, and the run's CPU time as a process on real etcd and on the in-memory store.
 * The targets of each measurement (issues 4 and 11) are in the tables, with whether they are met.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { checkLifecycle } from "../harness/props/lifecycle/run.ts";
import { benchFlakes, flakeTable } from "./flake-bench.ts";
import { benchHtml, htmlTable } from "./html-bench.ts";
import { baselineTree, caNote, commands, peakRssMiB, ROOT, timeCommands, type Command, type Tree, type WallTimes } from "./processes.ts";
import { benchEtcd, etcdTable } from "./etcd-bench.ts";
import { benchLua, luaTable } from "./lua-bench.ts";
import { benchRepro, reproTable } from "./repro-bench.ts";
import { fmtMs, max, median } from "./stats.ts";

const USAGE = `usage: npm run bench -- [--rounds N] [--seeds N] [--baseline <git ref>] [--flakes N] [--write]
       npm run bench -- --only html|lua|flakes|processes|etcd [--rounds N] [--flakes N] [--baseline <git ref>] [--write]

Prints medians and ratios on stderr; --write also writes bench/RESULTS.md (with --only, its section).
--only processes: the wall times of part 1 alone (node -e 0, --help, a bad usage, repro on real etcd and on
memory, run scenarios/ --versions all), with --baseline before/after ratios.
--only etcd: what real etcd costs a run (CPU per call, calls per run, the run's CPU on etcd and on memory).`;
let parsed: ReturnType<typeof parseBenchArgs>;
function parseBenchArgs() {
  return parseArgs({
    args: process.argv.slice(2),
    options: { rounds: { type: "string" }, seeds: { type: "string" }, baseline: { type: "string" }, flakes: { type: "string" }, only: { type: "string" }, write: { type: "boolean" }, help: { type: "boolean", short: "h" } },
  }).values;
}
try {
  parsed = parseBenchArgs();
} catch (e) {
  process.stderr.write(`bench: ${(e as Error).message}\n${USAGE}\n`);
  process.exit(2);
}
if (parsed.help) {
  process.stdout.write(USAGE + "\n");
  process.exit(0);
}
function count(name: "rounds" | "seeds" | "flakes", fallback: number): number {
  const v = parsed[name];
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v)) {
    process.stderr.write(`bench: --${name} expects a whole number, got "${v}"\n${USAGE}\n`);
    process.exit(2);
  }
  return Number(v);
}
const ROUNDS = count("rounds", 5);
const SEEDS = count("seeds", 20);
const BASELINE = parsed.baseline;
const FLAKES = count("flakes", 50);
const RUNS = 1000;
const log = (s: string): void => void process.stderr.write(s + "\n");

const machine = `node ${process.version}, ${availableParallelism()} CPU(s) (${cpus()[0]?.model ?? "?"}), load ${loadavg().map((x) => x.toFixed(2)).join(" ")}`;
log(`bench: ${machine}`);

const RESULTS = new URL("./RESULTS.md", import.meta.url);
/** The parts that also run alone, each a section of RESULTS.md that starts with its heading. */
const PARTS: Record<string, { heading: string; table: () => Promise<string>; args?: string }> = {
  html: { heading: "HTML report, ", table: async () => htmlTable(await benchHtml(ROUNDS, log)) },
  lua: {
    heading: "The lua engine (",
    table: async () => {
      const scratch = mkdtempSync(join(tmpdir(), "harness-bench-lua-"));
      const base = BASELINE ? baselineTree(BASELINE) : undefined;
      // A baseline from before the lua engine has nothing to compare.
      const luaBase = base && existsSync(join(base.dir, "harness/gateway/lua/lua-engine.ts")) ? base : undefined;
      if (base && !luaBase) log(`lua: ${base.label} has no lua engine; no before/after row`);
      try {
        return luaTable(await benchLua(ROUNDS, scratch, log, luaBase));
      } finally {
        rmSync(scratch, { recursive: true, force: true });
        base?.remove();
      }
    },
    args: `--rounds ${ROUNDS}${BASELINE ? ` --baseline ${BASELINE}` : ""}`,
  },
  flakes: { heading: "The scenario catalogue run ", table: async () => flakeTable(await benchFlakes(FLAKES, "inproc", "everything", log)), args: `--flakes ${FLAKES}` },
  processes: { heading: "Start-up and run wall times, ", table: processesTable, args: `--rounds ${ROUNDS}${BASELINE ? ` --baseline ${BASELINE}` : ""}` },
  etcd: { heading: "What real etcd costs ", table: async () => etcdTable(await benchEtcd(ROUNDS, log)) },
};

/** Part 1's wall times alone (no peak memory, no lifecycle rates), with --baseline before/after ratios. */
async function processesTable(): Promise<string> {
  const here: Tree = { label: "this tree", dir: ROOT };
  const base = BASELINE ? baselineTree(BASELINE) : undefined;
  const trees: Tree[] = base ? [base, here] : [here];
  const out = mkdtempSync(join(tmpdir(), "harness-bench-"));
  const load = (): string => loadavg().map((x) => x.toFixed(2)).join(" ");
  const loadBefore = load();
  try {
    const cmds = commands(out);
    const wall = await timeCommands(trees, cmds, ROUNDS, log, cmds[3]!);
    const med = (t: Tree, c: Command): number => median(wall.get(t.dir)!.get(c.name)!);
    const sec = (ms: number): string => `${(ms / 1000).toFixed(3)} s`;
    const rows = cmds.map((c) =>
      base
        ? `| ${c.name} | ${sec(med(base, c))} | ${sec(med(here, c))} | ${(med(here, c) / med(base, c)).toFixed(2)}× |`
        : `| ${c.name} | ${sec(med(here, c))} | ${sec(max(wall.get(here.dir)!.get(c.name)!))} |`,
    );
    return [
      `Start-up and run wall times, spawn to exit, median of ${ROUNDS} rounds` +
        (base ? `; before = commit ${base.label}, after = this tree, alternating within each round` : "") +
        `; load average ${loadBefore} at the start, ${load()} at the end:`,
      "",
      base ? "| command | before | after | after / before |" : "| command | median | max |",
      base ? "| --- | --- | --- | --- |" : "| --- | --- | --- |",
      ...rows,
      ...(caNote() ? ["", caNote()!] : []),
    ].join("\n");
  } finally {
    rmSync(out, { recursive: true, force: true });
    base?.remove();
  }
}

/** Where a part's section of RESULTS.md starts and ends (up to the next part's heading); undefined when absent. */
function sectionBounds(old: string, heading: string): { start: number; end: number } | undefined {
  const start = old.indexOf(heading);
  if (start < 0) return undefined;
  const ends = Object.values(PARTS).map((p) => old.indexOf(p.heading, start + heading.length)).filter((i) => i > start);
  return { start, end: ends.length ? Math.min(...ends) : old.length };
}

/** Replace a part's section of RESULTS.md, or append it. */
function writeSection(heading: string, section: string): void {
  const old = existsSync(RESULTS) ? readFileSync(RESULTS, "utf8") : "# Benchmark results\n\n";
  const at = sectionBounds(old, heading);
  if (!at) return writeFileSync(RESULTS, old.trimEnd() + "\n\n" + section);
  writeFileSync(RESULTS, old.slice(0, at.start) + section + (at.end < old.length ? "\n" + old.slice(at.end) : ""));
}

if (parsed.only !== undefined) {
  const name = parsed.only;
  const part = PARTS[name];
  if (!part) throw new Error(`--only: expected one of ${Object.keys(PARTS).join(", ")}, got "${name}"`);
  const section = `${await part.table()}\n\nMeasured with \`npm run bench -- --only ${name} ${part.args ?? `--rounds ${ROUNDS}`} --write\` on ${new Date().toISOString().slice(0, 10)}: ${machine}.\n`;
  process.stdout.write(section);
  if (parsed.write) writeSection(part.heading, section);
  process.exit(0);
}

const here: Tree = { label: "this tree", dir: ROOT };
const base = BASELINE ? baselineTree(BASELINE) : undefined;
const trees: Tree[] = base ? [base, here] : [here];
const out = mkdtempSync(join(tmpdir(), "harness-bench-"));

// ---- 1. whole processes ------------------------------------------------------------------

const cmds = commands(out);
let wall: WallTimes = new Map();
const rss = new Map<string, number[]>(trees.map((t) => [t.dir, []]));
const rates = new Map<string, number[]>(trees.map((t) => [t.dir, []]));
const verdicts = new Map<string, string[]>(trees.map((t) => [t.dir, []]));
const REPRO = cmds[3]!;

/** ROUNDS rounds of the lifecycle test in a fresh process of that tree (after its warm-up). */
function lifecycleRounds(tree: Tree, profile: string): { rates: number[]; verdicts: string[] } {
  const text = execFileSync(process.execPath, ["bin/run-ts.js", "bench/lifecycle-rate.ts", profile, String(ROUNDS), String(RUNS)], { cwd: tree.dir, encoding: "utf8" });
  return JSON.parse(text.trim().split("\n").at(-1)!) as { rates: number[]; verdicts: string[] };
}

try {
  wall = await timeCommands(trees, cmds, ROUNDS, log, REPRO, async (order) => {
    for (const t of order) rss.get(t.dir)!.push(await peakRssMiB(t.dir, REPRO.args, REPRO.exit));
  });
  // Lifecycle: two processes per tree, alternating, each ROUNDS rounds after a warm-up.
  for (const order of [trees, [...trees].reverse()]) {
    for (const t of order) {
      const r = lifecycleRounds(t, "3.18.0");
      rates.get(t.dir)!.push(...r.rates);
      verdicts.get(t.dir)!.push(...r.verdicts);
      log(`lifecycle 3.18.0, ${t.label}: ${r.rates.map((x) => x.toFixed(0)).join(", ")} sequences/s`);
    }
  }
} finally {
  rmSync(out, { recursive: true, force: true });
  base?.remove();
}

// ---- 2.-4. in this process ----------------------------------------------------------------

const repro = await benchRepro(ROUNDS, log);

await checkLifecycle("suggested", { runs: 200, seed: 999 });
const suggested: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const v = await checkLifecycle("suggested", { runs: RUNS, seed: 1000 + r });
  if (!v.holds) throw new Error(`suggested failed the lifecycle test: ${v.violation}`);
  suggested.push((v.runs / v.wallMs) * 1000);
}

const found: { seed: number; runs: number; wallMs: number; length: number; crash: string }[] = [];
for (let seed = 1; seed <= SEEDS; seed++) {
  const v = await checkLifecycle("3.15.0", { runs: RUNS, seed });
  if (v.holds) throw new Error(`3.15.0 seed ${seed}: no counterexample in ${RUNS} runs`);
  const crash = /failed to run (\w+): \S*healthcheck_manager\.lua:(\d+)/.exec(v.violation ?? "");
  found.push({ seed, runs: v.runs, wallMs: v.wallMs, length: v.counterexample?.length ?? 0, crash: crash ? `${crash[1]} :${crash[2]}` : (v.violation ?? "") });
}
log(`3.15.0 counterexamples: ${found.map((f) => `${f.wallMs} ms/${f.length} cmds`).join(", ")}`);

// ---- tables ---------------------------------------------------------------------------------

const s = (ms: number): string => `${(ms / 1000).toFixed(3)} s`;
/** `node -e 0` in the same environment as the command (with or without NODE_EXTRA_CA_CERTS). */
const floorCommand = (c: Command): Command => (c.variantOf ? cmds.find((x) => x.variantOf === cmds[0]!.name)! : cmds[0]!);
const floorOf = (t: Tree, c: Command): number => median(wall.get(t.dir)!.get(floorCommand(c).name)!);
const med = (t: Tree, name: string): number => median(wall.get(t.dir)!.get(name)!);
const TARGETS: Record<string, { text: string; met: (ms: number, floor: number) => boolean }> = {
  [cmds[1]!.name]: { text: "≤ 0.15 s and ≤ 3× `node -e 0`", met: (ms, floor) => ms <= 150 && ms <= 3 * floor },
  [cmds[2]!.name]: { text: "≤ 0.15 s and ≤ 3× `node -e 0`", met: (ms, floor) => ms <= 150 && ms <= 3 * floor },
  [cmds[3]!.name]: { text: "≤ 0.4 s", met: (ms) => ms <= 400 },
  [cmds[5]!.name]: { text: "≤ 0.8 s", met: (ms) => ms <= 800 },
};
const yes = (ok: boolean): string => (ok ? "yes" : "**no**");

const head = base
  ? ["| measurement | before (" + base.label + ") | after (this tree) | after / before | after / `node -e 0` | target | met |", "| --- | --- | --- | --- | --- | --- | --- |"]
  : ["| measurement | median | max | / `node -e 0` | target | met |", "| --- | --- | --- | --- | --- | --- |"];
const rows = cmds.map((c) => {
  const after = med(here, c.name);
  const target = TARGETS[c.variantOf ?? c.name];
  const floor = floorOf(here, c);
  const ratio = floorCommand(c) === c ? "1.00×" : `${(after / floor).toFixed(2)}×`;
  const tail = [target?.text ?? "", target ? yes(target.met(after, floor)) : ""];
  if (!base) return `| ${c.name} | ${s(after)} | ${s(max(wall.get(here.dir)!.get(c.name)!))} | ${ratio} | ${tail.join(" | ")} |`;
  const before = med(base, c.name);
  return `| ${c.name} | ${s(before)} | ${s(after)} | ${(after / before).toFixed(2)}× | ${ratio} | ${tail.join(" | ")} |`;
});
const rssAfter = median(rss.get(here.dir)!);
const rateAfter = median(rates.get(here.dir)!);
if (base) {
  const rssBefore = median(rss.get(base.dir)!);
  const rateBefore = median(rates.get(base.dir)!);
  rows.push(`| peak memory of \`harness repro\` (real etcd) | ${rssBefore.toFixed(0)} MiB | ${rssAfter.toFixed(0)} MiB | ${(rssAfter / rssBefore).toFixed(2)}× | | ≤ 100 MiB | ${yes(rssAfter <= 100)} |`);
  rows.push(`| lifecycle sequences/s, 3.18.0 (median of ${2 * ROUNDS} rounds of ${RUNS}) | ${rateBefore.toFixed(0)} | ${rateAfter.toFixed(0)} | ${(rateAfter / rateBefore).toFixed(2)}× | | ≥ 5,000 | ${yes(rateAfter >= 5000)} |`);
} else {
  rows.push(`| peak memory of \`harness repro\` (real etcd) | ${rssAfter.toFixed(0)} MiB | ${max(rss.get(here.dir)!).toFixed(0)} MiB | | ≤ 100 MiB | ${yes(rssAfter <= 100)} |`);
  rows.push(`| lifecycle sequences/s, 3.18.0 (median of ${2 * ROUNDS} rounds of ${RUNS}) | ${rateAfter.toFixed(0)} | ${Math.min(...rates.get(here.dir)!).toFixed(0)} (min) | | ≥ 5,000 | ${yes(rateAfter >= 5000)} |`);
}
const sameVerdicts = base ? JSON.stringify(verdicts.get(base.dir)) === JSON.stringify(verdicts.get(here.dir)) : true;
const processTable = [
  `Whole processes, wall time from spawn to exit, median of ${ROUNDS} rounds` +
    (base ? `; before = commit ${base.label}, after = this tree, alternating within each round` : "") +
    `. Peak memory: the process's maximum resident set (etcd not included). Lifecycle: two processes per tree (alternating), each ${ROUNDS} rounds of ${RUNS} sequences (seeds 1000..) after a warm-up, in-memory store, simulated backends.`,
  "",
  ...head,
  ...rows,
  "",
  ...(caNote() ? [caNote()!, ""] : []),
  `Lifecycle verdicts per round: ${[...new Set(verdicts.get(here.dir)!)].join(", ")} (${verdicts.get(here.dir)!.length} rounds)` + (base ? `; ${sameVerdicts ? "the same" : "**different**"} before and after.` : "."),
].join("\n");

const seqTable = [
  `Lifecycle model test in this process, ${RUNS} sequences per round, ${ROUNDS} rounds, in-memory store, simulated backends:`,
  "",
  "| profile | median sequences/s | min | max |",
  "| --- | --- | --- | --- |",
  `| suggested | ${median(suggested).toFixed(0)} | ${Math.min(...suggested).toFixed(0)} | ${max(suggested).toFixed(0)} |`,
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

const etcd = await PARTS.etcd!.table();
const html = await PARTS.html!.table();
const lua = await PARTS.lua!.table();
/** With --flakes 0 the file keeps the flake section it had (with its own "Measured with" line). */
function keptSection(heading: string): string | undefined {
  const old = existsSync(RESULTS) ? readFileSync(RESULTS, "utf8") : "";
  const at = sectionBounds(old, heading);
  return at && old.slice(at.start, at.end).trimEnd();
}
const flakes = FLAKES > 0 ? await PARTS.flakes!.table() : keptSection(PARTS.flakes!.heading);

const command = `npm run bench -- --rounds ${ROUNDS} --seeds ${SEEDS}${BASELINE ? ` --baseline ${BASELINE}` : ""} --flakes ${FLAKES} --write`;
const text = [
  "# Benchmark results",
  "",
  `Measured with \`${command}\` on ${new Date().toISOString().slice(0, 10)}: ${machine} at the start, ${loadavg().map((x) => x.toFixed(2)).join(" ")} at the end (other work shares this 2-core machine).`,
  "",
  processTable,
  "",
  etcd,
  "",
  seqTable,
  "",
  reproTable(repro),
  "",
  findTable,
  "",
  html,
  "",
  lua,
  "",
  ...(flakes ? [flakes, ""] : []),
].join("\n");
process.stdout.write(text);
if (parsed.write) writeFileSync(RESULTS, text);
