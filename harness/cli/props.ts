import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import type { ConstructPropertyId } from "../props/construct-properties.ts";
import type { GatewayVersion } from "../gateway/engine.ts";
import type { ModelVersion } from "../gateway/model-engine.ts";
import { diffSummary } from "./diff.ts";
import { throwIfInterrupted } from "./interrupt.ts";
import { addEngineOptions, engineKind, versionsOption, workersOption, writableDirOption, type EngineCliOptions } from "./options.ts";
import { writeRecord } from "./output.ts";
import { EXIT, UsageError, type CommandContext } from "./usage.ts";

/**
 * CONSTRUCT_PROPERTIES' ids in its order, then lifecycle. Spelled out so that `--help` need not
 * load the property code; test/props/construct-properties.test.ts keeps the two lists equal.
 */
export const PROPERTY_IDS = ["totality", "agreement", "purity", "idempotence", "lifecycle"] as const satisfies readonly (ConstructPropertyId | "lifecycle")[];
type PropertyId = (typeof PROPERTY_IDS)[number];

export interface PropsRow {
  profile: string;
  engine: string;
  property: PropertyId;
  holds: boolean;
  known?: "holds" | "fails";
  asKnown: boolean;
  runs: number;
  seed: number;
  path?: string;
  /** Lifecycle only: fast-check's commands need this beside seed and path to replay. */
  replayPath?: string;
  counterexample?: unknown;
  message?: string;
  scenarioFile?: string;
  /** The scenario file's text, written by the command after the verdicts are printed. */
  scenarioText?: string;
  replay?: string;
  wallMs: number;
}

function known(): Record<string, Partial<Record<PropertyId, "holds" | "fails">>> {
  return (JSON.parse(readFileSync(new URL("../../fixtures/props-expected.json", import.meta.url), "utf8")) as { verdicts: Record<string, Partial<Record<PropertyId, "holds" | "fails">>> }).verdicts;
}

/** With `signal` aborted it stops within the property being checked and throws Interrupted. */
export async function runProps(opts: { versions: GatewayVersion[]; properties: PropertyId[]; runs: number; seed: number; path?: string; replayPath?: string; out: string; progress: (line: string) => void; signal?: AbortSignal }): Promise<PropsRow[]> {
  const expected = known();
  const signal = opts.signal ?? new AbortController().signal;
  const [{ checkConstructProperty }, { checkLifecycle }, { counterexampleToScenario }] = await Promise.all([
    import("../props/construct-properties.ts"),
    import("../props/lifecycle/run.ts"),
    import("../props/lifecycle/to-scenario.ts"),
  ]);
  const rows: PropsRow[] = [];
  for (const profile of opts.versions) {
    for (const property of opts.properties) {
      throwIfInterrupted(signal);
      const base = { runs: opts.runs, seed: opts.seed, signal, ...(opts.path ? { path: opts.path } : {}) };
      let row: PropsRow;
      if (property === "lifecycle") {
        const v = await checkLifecycle(profile, opts.replayPath !== undefined ? { ...base, replayPath: opts.replayPath } : base).catch((e: unknown) => {
          throwIfInterrupted(signal);
          throw e;
        });
        throwIfInterrupted(signal);
        row = { profile: profile.name, engine: profile.engine, property, holds: v.holds, asKnown: true, runs: v.runs, seed: v.seed, wallMs: v.wallMs };
        if (v.path) row.path = v.path;
        if (v.replayPath !== undefined) row.replayPath = v.replayPath;
        if (v.counterexample) row.counterexample = v.counterexample;
        if (v.violation) row.message = v.violation;
        if (!v.holds && v.trace) {
          row.scenarioFile = join(opts.out, `props-${profile.name}-lifecycle-seed${v.seed}.yaml`);
          row.scenarioText = counterexampleToScenario(v);
        }
      } else {
        const v = await checkConstructProperty((profile as ModelVersion).profile, property as ConstructPropertyId, base);
        throwIfInterrupted(signal);
        row = { profile: profile.name, engine: profile.engine, property, holds: v.holds, asKnown: true, runs: v.runs, seed: v.seed, wallMs: v.wallMs };
        if (v.path) row.path = v.path;
        if (v.counterexample !== undefined) row.counterexample = v.counterexample;
        if (v.message) row.message = v.message;
      }
      const k = expected[profile.name]?.[property];
      if (k) {
        row.known = k;
        row.asKnown = (k === "holds") === row.holds;
      }
      if (!row.holds && row.path) {
        row.replay = `harness props --version ${profile.name}${profile.engine === "lua" ? " --engine lua" : ""} --property ${property} --seed ${row.seed} --path ${row.path}`;
        if (row.replayPath) row.replay += ` --replay-path '${row.replayPath}'`;
      }
      opts.progress(`${profile.name} ${property}: ${row.holds ? "holds" : "FAILS"}${row.known ? (row.asKnown ? " (as known)" : ` (known to ${row.known})`) : ""} in ${row.wallMs} ms`);
      rows.push(row);
    }
  }
  return rows;
}

function pad(s: string, n: number): string {
  return s + " ".repeat(Math.max(0, n - s.length));
}

export function formatProps(rows: PropsRow[], properties: PropertyId[]): string {
  const profiles = [...new Set(rows.map((r) => r.profile))];
  const cell = (p: string, prop: PropertyId): string => {
    const r = rows.find((x) => x.profile === p && x.property === prop);
    if (!r) return "-";
    return `${r.holds ? "holds" : "FAILS"}${r.asKnown ? "" : "!"}`;
  };
  const width = Math.max(7, ...profiles.map((p) => p.length));
  const out = [[pad("PROFILE", width), ...properties.map((p) => pad(p.toUpperCase(), 12))].join("  ")];
  for (const p of profiles) out.push([pad(p, width), ...properties.map((prop) => pad(cell(p, prop), 12))].join("  "));
  out.push("(! = differs from what the profile is known to do)");
  for (const r of rows.filter((x) => !x.holds)) {
    out.push("");
    out.push(`${r.profile} ${r.property}: fails after ${r.runs} run(s), seed ${r.seed}${r.path ? `, path ${r.path}` : ""}`);
    if (r.message) out.push(`  why: ${r.message}`);
    if (Array.isArray(r.counterexample)) r.counterexample.forEach((s, i) => out.push(`  ${i + 1}. ${String(s)}`));
    else if (r.counterexample !== undefined) out.push(`  counterexample: ${JSON.stringify(r.counterexample)}`);
    if (r.replay) out.push(`  replay: ${r.replay}`);
    if (r.scenarioFile) out.push(`  scenario: ${r.scenarioFile}  (replay: harness run ${r.scenarioFile} --versions ${r.profile}${r.engine === "lua" ? " --engine lua" : ""})`);
  }
  const bad = rows.filter((r) => !r.asKnown);
  out.push("");
  out.push(bad.length === 0 ? `all ${rows.length} verdicts are as known` : `${bad.length} of ${rows.length} verdicts differ from what is known: ${bad.map((r) => `${r.profile} ${r.property}`).join(", ")}`);
  return out.join("\n");
}

/** Write each lifecycle counterexample's scenario file (runProps leaves that to its caller). */
export function writeCounterexamples(rows: PropsRow[]): void {
  for (const r of rows) if (r.scenarioFile && r.scenarioText) writeRecord(r.scenarioFile, r.scenarioText);
}

/**
 * The HTML report of a props run: the verdict table, and each lifecycle counterexample's
 * scenario replayed on every version of the run (in-memory store), so its timeline shows where
 * it breaks and where it does not. Returns the page's path.
 */
export async function propsHtml(rows: PropsRow[], properties: PropertyId[], versions: GatewayVersion[], out: string, workers = 1): Promise<string> {
  const [{ MemoryStore }, { writeHtml }, { loadScenario }, { runSuite }, { InprocFactory }] = await Promise.all([
    import("../gateway/config/memory-store.ts"),
    import("../report/html/index.ts"),
    import("../runner/load.ts"),
    import("../runner/suite.ts"),
    import("../targets/inproc.ts"),
  ]);
  writeCounterexamples(rows);
  const scenarios = rows.filter((r) => r.scenarioFile).map((r) => loadScenario(r.scenarioFile!));
  const factory = new InprocFactory(() => new MemoryStore("props replay store"), "memory (props replay)", "loopback", workers);
  const suite = await runSuite({ scenarios, versions, factory, seed: rows[0]?.seed ?? 0 });
  const file = join(out, "props.html");
  const note = scenarios.length === 0 ? "\n\nNo lifecycle counterexample: nothing to replay." : "\n\nBelow: each lifecycle counterexample's scenario replayed on every version of this run.";
  writeHtml(suite, file, { title: "harness props: property verdicts and counterexamples", extra: { title: "Property verdicts", text: formatProps(rows, properties) + note } });
  return file;
}

interface PropsCliOptions extends EngineCliOptions {
  diff?: boolean;
  recheck: boolean;
  version: string;
  runs: string;
  seed?: string;
  path?: string;
  replayPath?: string;
  property?: string;
  json?: boolean;
  out: string;
  reporter: string;
}

/** props --diff: the lifecycle test on both engines, sequence by sequence. */
async function propsDiff(o: PropsCliOptions, ctx: CommandContext): Promise<void> {
  if (!/^\d+$/.test(o.runs) || Number(o.runs) < 1) throw new UsageError(`--runs: expected a positive whole number, got "${o.runs}"`);
  if (o.seed !== undefined && !/^-?\d+$/.test(o.seed)) throw new UsageError(`--seed: expected a whole number, got "${o.seed}"`);
  const spec = o.version === "all" ? "all" : o.version;
  const lua = await versionsOption("--version", spec, { ...o, engine: "lua" });
  const model = await versionsOption("--version", spec, { ...o, engine: "model" });
  const { diffLifecycle } = await import("../props/lifecycle/diff.ts");
  const seed = o.seed !== undefined ? Number(o.seed) : Date.now() % 2 ** 31;
  const runs = Number(o.runs);
  process.stderr.write(`props --diff: seed ${seed}, ${runs} lifecycle sequences per version on both engines\n`);
  const details: string[] = [];
  const out: string[] = ["VERSION  SEQUENCES  AGREE  DISAGREE  CHANCE  DIFFER"];
  let [sequences, disagreements, differ, rechecked] = [0, 0, 0, false];
  for (const [i, l] of lua.entries()) {
    const d = await diffLifecycle({ model: model[i]!, lua: l, sequences: runs, seed, recheck: o.recheck, signal: ctx.signal, progress: (n) => { if (n % 50 === 0) process.stderr.write(`  ${l.name}: ${n}/${runs}\n`); } });
    [sequences, disagreements, differ, rechecked] = [sequences + d.sequences, disagreements + d.disagreements.length, differ + d.differ, rechecked || d.rechecked];
    const chance = d.disagreements.length - d.differ;
    out.push(`${l.name.padEnd(7)}  ${String(d.sequences).padEnd(9)}  ${String(d.sequences - d.disagreements.length).padEnd(5)}  ${String(d.disagreements.length).padEnd(8)}  ${String(d.rechecked ? chance : "-").padEnd(6)}  ${d.differ}  (${(d.wallMs / 1000).toFixed(1)} s)`);
    // Real differences first: they are what the run is for.
    const shown = [...d.disagreements.filter((x) => !x.chance), ...d.disagreements.filter((x) => x.chance)].slice(0, 5);
    for (const x of shown) {
      details.push("", `${x.chance ? "CHANCE" : "DIFFER"} ${l.name} sequence ${x.index}: model ${x.model}, lua ${x.lua}`, ...x.first.split("\n").map((t) => `  ${t}`), ...x.steps.map((t, k) => `  ${k + 1}. ${t}`));
      if (x.chance) details.push(`  ${x.chance}`);
      if (x.sortedFirst) details.push("  still apart with both walking tables in key order:", ...x.sortedFirst.split("\n").map((t) => `  ${t}`));
    }
    if (d.disagreements.length > 5) details.push(`  (${d.disagreements.length - 5} more on ${l.name})`);
  }
  const summary = diffSummary(sequences, "sequences on both engines", disagreements, differ, rechecked);
  const order = o.order === "sorted" ? " --order sorted" : "";
  process.stdout.write([...out, "", summary, ...details, "", `replay: harness props --diff --version ${o.version} --runs ${runs} --seed ${seed}${order}`].join("\n") + "\n");
  process.exitCode = differ === 0 ? EXIT.ok : EXIT.failed;
}

export function registerProps(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command("props")
    .description("property tests: construct_upstream (totality, agreement, purity, idempotence) and the checker-lifecycle model test, per profile")
    .option("--version <list>", "profiles, comma separated; all = every profile, candidates included", "all")
    .option("--runs <n>", "runs per property", "1000")
    .option("--seed <n>", "fast-check seed (default: a new one, printed so the run can be repeated)")
    .option("--path <path>", "replay a counterexample (with one --version and one --property)")
    .option("--replay-path <p>", "lifecycle replay: the replay path printed with the counterexample")
    .option("--property <name>", `only this property: ${PROPERTY_IDS.join(", ")}`)
    .option("--json", "print the verdicts as JSON")
    .option("--out <dir>", "where counterexample scenarios (and the HTML report) go", "reports")
    .option("--reporter <list>", "table (the verdicts on stdout) and/or html (props.html under --out: the verdicts and each lifecycle counterexample's timeline)", "table")
    .option("--diff", "differential: --runs generated lifecycle sequences per release, each on the model and on APISIX's own Lua (same seed), listing where they disagree")
    .option("--no-recheck", "with --diff: do not replay disagreeing sequences in key order to tell chance (pairs() order) from real differences");
  addEngineOptions(cmd).action(async (o: PropsCliOptions) => {
      if (o.diff) return propsDiff(o, ctx);
      const reporters = o.reporter.split(",").map((r) => r.trim()).filter(Boolean);
      if (reporters.length === 0 || reporters.some((r) => r !== "table" && r !== "html")) throw new UsageError(`--reporter: expected table and/or html, got "${o.reporter}"`);
      const profiles = await versionsOption("--version", o.version, o, true);
      const lua = engineKind(o) === "lua";
      const workers = workersOption(o);
      if (lua && o.property !== undefined && o.property !== "lifecycle") throw new UsageError(`--property ${o.property}: the construct_upstream properties run on the model engine; the lua engine runs the lifecycle test`);
      if (!/^\d+$/.test(o.runs) || Number(o.runs) < 1) throw new UsageError(`--runs: expected a positive whole number, got "${o.runs}"`);
      if (o.seed !== undefined && !/^-?\d+$/.test(o.seed)) throw new UsageError(`--seed: expected a whole number, got "${o.seed}"`);
      if (o.property !== undefined && !(PROPERTY_IDS as readonly string[]).includes(o.property)) throw new UsageError(`--property: expected one of ${PROPERTY_IDS.join(", ")}, got "${o.property}"`);
      if (o.path !== undefined && (profiles.length !== 1 || o.property === undefined || o.seed === undefined)) throw new UsageError("--path replays one counterexample: give one --version, one --property and its --seed");
      writableDirOption("--out", o.out);
      const properties = (o.property ? [o.property] : lua ? ["lifecycle"] : [...PROPERTY_IDS]) as PropertyId[];
      const seed = o.seed !== undefined ? Number(o.seed) : Date.now() % 2 ** 31;
      process.stderr.write(`props: seed ${seed}, ${o.runs} runs per property, ${profiles.length} version(s) on the ${engineKind(o)} engine\n`);
      const runOpts: Parameters<typeof runProps>[0] = { versions: profiles, properties, runs: Number(o.runs), seed, out: o.out, progress: (l) => void process.stderr.write(`  ${l}\n`), signal: ctx.signal };
      if (o.path) runOpts.path = o.path;
      if (o.replayPath !== undefined) runOpts.replayPath = o.replayPath;
      const rows = await runProps(runOpts);
      if (o.json) process.stdout.write(JSON.stringify({ seed, rows: rows.map(({ scenarioText: _t, ...r }) => r) }, null, 2) + "\n");
      else if (reporters.includes("table")) process.stdout.write(formatProps(rows, properties) + "\n");
      process.exitCode = rows.every((r) => r.asKnown) ? EXIT.ok : EXIT.failed;
      // The counterexample scenarios are written once the verdicts are out.
      writeCounterexamples(rows);
      if (reporters.includes("html")) process.stderr.write(`report: ${await propsHtml(rows, properties, profiles, o.out, workers)}\n`);
    });
}
