import { join } from "node:path";
import type { Command } from "commander";
import type { GatewayVersion } from "../gateway/engine.ts";
import type { RunResult, RunTimeline, StepRecord, SuiteResult } from "../runner/result.ts";
import type { knownBehaviour, ReproObservation } from "../repro/repro-13101.ts";
import { throwIfInterrupted } from "./interrupt.ts";
import { addEngineOptions, checkVersionsOption, engineKind, intOption, storeOption, workersOption, writableDirOption, type EngineCliOptions } from "./options.ts";
import { writeRecord } from "./output.ts";
import { EXIT, UsageError, type CommandContext } from "./usage.ts";

export interface ReproRow extends ReproObservation {
  version: string;
  engine: string;
  /** What ran the version (model profile, or the Lua sources and libraries). */
  ran: string;
  /** Undefined: nothing is known about this version (a patched or unreleased tree). */
  asKnown: boolean | undefined;
  differences: string[];
  prefix: string;
  /** What the gateway did (only when asked for: the HTML report draws it). */
  timeline?: RunTimeline;
}

export interface ReproRecord {
  issue: "apache/apisix#13101";
  startedAt: string;
  wallMs: number;
  store: { kind: string; source: string; reason: string; startMs: number };
  engine: string;
  seed: number;
  results: ReproRow[];
  ok: boolean;
}

const MODEL: EngineCliOptions = { engine: "model", workers: "1" };

/**
 * The repro on each version. With `signal` aborted it stops at the next step, closes the
 * gateways, then the store, and throws the Interrupted reason: no partial record.
 */
export async function runRepro(opts: { versions: string; store: "etcd" | "memory"; engine?: EngineCliOptions; seed?: number; log: (line: string) => void; timeline?: boolean; signal?: AbortSignal }): Promise<ReproRecord> {
  const started = Date.now();
  const engine = opts.engine ?? MODEL;
  const seed = opts.seed ?? 1;
  const signal = opts.signal ?? new AbortController().signal;
  const loadVersions = await checkVersionsOption("--versions", opts.versions, engine);
  const workers = workersOption(engine);
  // The input checked, the store next (a local etcd spawned), then the engine's and the
  // gateway's code load while etcd boots.
  const { startStore } = await import("../etcd/provision.ts");
  const store = startStore({ prefer: opts.store, log: opts.log, signal });
  await store.started;
  const loaded = Promise.all([import("../repro/repro-13101.ts"), import("../targets/inproc.ts")]);
  let versions: GatewayVersion[];
  try {
    versions = await loadVersions();
  } catch (e) {
    await store.ready.then((p) => p.release(), () => undefined);
    throw e;
  }
  const provisioned = await store.ready.catch((e: unknown) => {
    throwIfInterrupted(signal);
    throw e;
  });
  let results: ReproRow[];
  try {
    const [{ compareWithKnown, knownBehaviour, REPRO_BACKENDS, reproduce13101 }, { InprocTarget }] = await loaded;
    const one = async (version: (typeof versions)[number]): Promise<ReproRow> => {
      throwIfInterrupted(signal);
      const prefix = `/apisix-repro-${process.pid}-${started}-${version.name.replace(/[^\w.-]/g, "_")}`;
      const target = await InprocTarget.create({ version, store: provisioned.store, prefix, backends: REPRO_BACKENDS, seed, workers, trace: opts.timeline === true, afterClose: () => provisioned.forgetPrefix(prefix) });
      try {
        const origin = target.now();
        const obs = await reproduce13101(target, signal);
        const known = knownBehaviour(version.name);
        const differences = known ? compareWithKnown(obs, known) : [];
        const row: ReproRow = { version: version.name, engine: version.engine, ran: target.gateway.engine.description, ...obs, asKnown: known ? differences.length === 0 : undefined, differences, prefix };
        const events = await target.timeline();
        if (events) row.timeline = { clock: "virtual", origin, events: events.map((e) => ({ ...e, t: e.t - origin })) };
        return row;
      } finally {
        await target.close();
      }
    };
    if (engineKind(engine) === "model") {
      // On the model each version has its own gateway, clock, backends and key prefix: they run
      // at once, so one version's etcd round trips overlap another's work. Rows keep their order.
      const settled = await Promise.allSettled(versions.map(one));
      const failed = settled.find((s) => s.status === "rejected");
      if (failed) throw failed.reason;
      results = settled.map((s) => (s as PromiseFulfilledResult<ReproRow>).value);
    } else {
      results = [];
      for (const version of versions) results.push(await one(version));
    }
  } catch (e) {
    throwIfInterrupted(signal);
    throw e;
  } finally {
    await provisioned.release();
  }
  throwIfInterrupted(signal);
  return {
    issue: "apache/apisix#13101",
    startedAt: new Date(started).toISOString(),
    wallMs: Date.now() - started,
    store: { kind: provisioned.kind, source: provisioned.source, reason: provisioned.reason, startMs: provisioned.startMs },
    engine: engineKind(engine),
    seed,
    results,
    ok: results.every((r) => r.asKnown !== false),
  };
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + " ".repeat(n - s.length);
}

export function formatReproTable(record: ReproRecord): string {
  const head = ["VERSION", "VERDICT", "FAILURES IN 3 S AFTER PATCH", "AS KNOWN", "FIRST MATCHING ERROR LINE"];
  const rows = record.results.map((r) => [r.version, r.verdict, String(r.failures), r.asKnown === undefined ? "-" : r.asKnown ? "yes" : `NO: ${r.differences.join("; ")}`, r.firstErrorLine ?? "-"]);
  const widths = head.slice(0, 4).map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 4 ? pad(c, widths[i]!) : c)).join("  ");
  const out = [line(head), ...rows.map(line)];
  const reproduced = record.results.filter((r) => r.verdict === "REPRODUCED").map((r) => r.version);
  out.push("");
  const judged = record.results.filter((r) => r.asKnown !== undefined).length;
  const unknown = record.results.length - judged;
  const tail = `${unknown ? `; ${unknown} with no known behaviour` : ""} (${record.engine} engine, ${(record.wallMs / 1000).toFixed(1)} s)`;
  out.push(
    record.ok
      ? `all ${judged} known versions behave as known; reproduced on: ${reproduced.join(", ") || "none"}${tail}`
      : `${record.results.filter((r) => r.asKnown === false).length} of ${judged} known versions do NOT behave as known${tail}`,
  );
  return out.join("\n");
}

function stepKind(step: string): string {
  if (/^(PUT|PATCH|DELETE|GET) \/apisix\/admin/.test(step)) return "admin";
  if (/^wait /.test(step)) return "wait";
  return "request";
}

/** The repro as a suite of runs (one per version), so the HTML report can draw it. `known`: repro-13101.ts's knownBehaviour. */
export function reproSuite(record: ReproRecord, known: typeof knownBehaviour): SuiteResult {
  const store = `${record.store.kind} (${record.store.source})`;
  const runs = record.results.map((r): RunResult => {
    const steps: StepRecord[] = r.steps.map((s, index) => ({ index, kind: stepKind(s.step), summary: s.status === undefined ? s.step : `${s.step} -> ${s.status}`, atMs: s.atMs, wallMs: 0, ok: true }));
    const end = steps.at(-1)?.atMs ?? 0;
    const held = r.verdict === "REPRODUCED";
    steps.push({ index: steps.length, kind: "assert", summary: `timer crash on a nil upstream -> ${held ? "holds" : "does not hold"} (${r.failures} failures in 3 s after the PATCH)`, atMs: end, wallMs: 0, ok: true, bug: true, held, ...(r.firstErrorLine ? { observed: { first: r.firstErrorLine } } : {}) });
    // A version with no known behaviour is expected to show what it showed (nothing to judge).
    const expected = known(r.version)?.verdict ?? r.verdict;
    const run: RunResult = {
      scenario: { name: "the bug report's steps: PUT, request, wait 2 s, PATCH, wait 3 s", file: "harness repro", issue: record.issue, tags: [] },
      version: r.version,
      engine: r.engine,
      target: "inproc",
      store,
      seed: record.seed,
      expected: expected === "REPRODUCED" ? "reproduces" : "passes",
      outcome: held ? "reproduces" : "passes",
      met: r.asKnown !== false,
      bugAssertions: { held: held ? 1 : 0, total: 1 },
      steps,
      wallMs: 0,
    };
    if (r.asKnown === false) run.failure = { step: steps.length - 1, kind: "assert", message: r.differences.join("; ") };
    if (r.timeline) run.timeline = r.timeline;
    return run;
  });
  return { startedAt: record.startedAt, wallMs: record.wallMs, target: "inproc", store, seed: record.seed, versions: record.results.map((r) => r.version), engines: [record.engine], runs, ok: record.ok };
}

export function registerRepro(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command("repro")
    .description("reproduce apache/apisix#13101 (PUT route, request, wait 2 s, PATCH, wait 3 s) on each version and print the verdicts")
    .option("--versions <list>", "versions or candidates, comma separated; all = the four releases, everything = releases and candidates", "all")
    .option("--store <kind>", "etcd (a real etcd, the default; falls back to memory when none can be had) or memory", "etcd")
    .option("--json", "print the result as JSON instead of a table")
    .option("--out <dir>", "where the JSON record of the run (and the HTML report) go", "reports")
    .option("--reporter <list>", "table (the verdicts on stdout) and/or html (repro-13101.html under --out, with each version's timeline)", "table")
    .option("--seed <n>", "decides what APISIX leaves to chance (the lua engine's pairs() order over the pools)", "1");
  addEngineOptions(cmd).action(async (o: { versions: string; store: string; json?: boolean; out: string; seed: string; reporter: string } & EngineCliOptions) => {
    const reporters = o.reporter.split(",").map((r) => r.trim()).filter(Boolean);
    if (reporters.length === 0 || reporters.some((r) => r !== "table" && r !== "html")) throw new UsageError(`--reporter: expected table and/or html, got "${o.reporter}"`);
    const html = reporters.includes("html");
    const store = storeOption(o.store);
    const seed = intOption("--seed", o.seed);
    writableDirOption("--out", o.out);
    const record = await runRepro({ versions: o.versions, store, engine: o, seed, log: (l) => process.stderr.write(l + "\n"), timeline: html, signal: ctx.signal });
    // The timelines go to the HTML report only; the JSON record stays the verdicts and steps.
    const plain = { ...record, results: record.results.map(({ timeline: _t, ...r }) => r) };
    // The verdicts first: a record that cannot be written must not hide them.
    if (o.json) process.stdout.write(JSON.stringify(plain, null, 2) + "\n");
    else if (reporters.includes("table")) process.stdout.write(formatReproTable(record) + "\n");
    process.exitCode = record.ok ? EXIT.ok : EXIT.failed;
    const file = join(o.out, `repro-13101-${record.startedAt.replace(/[:.]/g, "-")}.json`);
    writeRecord(file, JSON.stringify(plain, null, 2) + "\n");
    process.stderr.write(`record: ${file}\n`);
    if (html) {
      const page = join(o.out, "repro-13101.html");
      const [{ writeHtml }, { knownBehaviour }] = await Promise.all([import("../report/html/index.ts"), import("../repro/repro-13101.ts")]);
      writeHtml(reproSuite(record, knownBehaviour), page, { title: "apache/apisix#13101: the bug report's steps on each version" });
      process.stderr.write(`report: ${page}\n`);
    }
  });
}
