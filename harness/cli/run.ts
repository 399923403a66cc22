import type { Command } from "commander";
import type { GatewayVersion } from "../gateway/engine.ts";
import type { runSuite, TargetFactory } from "../runner/suite.ts";
import { parseDuration } from "../runner/duration.ts";
import { throwIfInterrupted } from "./interrupt.ts";
import { addEngineOptions, checkVersionsOption, engineKind, intOption, scenariosOption, storeOption, workersOption, writableDirOption, type EngineCliOptions } from "./options.ts";
import { EXIT, UsageError, type CommandContext } from "./usage.ts";

interface RunOptions extends EngineCliOptions {
  versions: string;
  target: string;
  store: string;
  seed: string;
  reporter: string;
  out: string;
  concurrency?: string;
  runTimeout?: string;
  adminUrl?: string;
  gatewayUrl?: string;
  controlUrl?: string;
  apiKey?: string;
  errorLog?: string;
}

/** The reporters, the scenario files (checked) and the report code: bad input is a UsageError. */
async function loadRunInput(paths: string[], o: RunOptions) {
  const [{ parseReporters, writeReports }, { progressLine, summaryText }] = await Promise.all([import("../report/index.ts"), import("../report/console.ts")]);
  let reporters;
  try {
    reporters = parseReporters(o.reporter);
  } catch (e) {
    throw new UsageError(`--reporter: ${(e as Error).message}`);
  }
  const scenarios = await scenariosOption(paths);
  if (scenarios.length === 0) throw new UsageError(`no scenario files (*.yaml) in ${paths.join(", ")}`);
  return { reporters, scenarios, writeReports, progressLine, summaryText };
}

function durationOption(name: string, v: string): number {
  let ms: number;
  try {
    ms = parseDuration(/^\d+$/.test(v) ? Number(v) : v);
  } catch {
    ms = NaN;
  }
  if (!(ms >= 1)) throw new UsageError(`${name}: expected a duration such as 90s, 5m or whole milliseconds, got "${v}"`);
  return ms;
}

export function registerRun(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command("run")
    .description("run scenario files against versions and report whether each meets its expectation")
    .argument("[paths...]", "scenario files or directories", ["scenarios"])
    .option("--versions <list>", "versions or candidates, comma separated (all = the four releases, candidates, everything)", "all")
    .option("--target <kind>", "inproc (reference gateway in this process, virtual clock), serve (reference gateway as a child process, real time), external (a running APISIX)", "inproc")
    .option("--store <kind>", "etcd or memory (inproc target)", "etcd")
    .option("--seed <n>", "decides what APISIX leaves to chance (the lua engine's pairs() order over the pools); recorded with every run", "1")
    .option("--reporter <list>", "console,junit,json,markdown,html", "console")
    .option("--out <dir>", "where report files go", "reports")
    .option("--concurrency <n>", "runs at once (default: the core count)")
    .option("--run-timeout <duration>", "fail a run that takes longer, naming the step it was in (default: 60s, plus the scenario's waits on real-time targets)")
    .option("--admin-url <url>", "external: Admin API base URL, e.g. http://127.0.0.1:9180")
    .option("--gateway-url <url>", "external: data plane base URL, e.g. http://127.0.0.1:9080")
    .option("--control-url <url>", "external: control API base URL, e.g. http://127.0.0.1:9090")
    .option("--api-key <key>", "external: Admin API key", "edd1c9f034335f136f87ad84b625c8f1")
    .option("--error-log <file>", "external: path of the gateway's error log file");
  addEngineOptions(cmd).action(async (paths: string[], o: RunOptions) => {
      // What the user gave is checked before anything starts.
      const loadVersions = await checkVersionsOption("--versions", o.versions, o);
      const workers = workersOption(o);
      if (!["inproc", "serve", "external"].includes(o.target)) throw new UsageError(`--target: expected inproc, serve or external, got "${o.target}"`);
      const store = storeOption(o.store);
      const seed = intOption("--seed", o.seed);
      const concurrency = o.concurrency === undefined ? undefined : intOption("--concurrency", o.concurrency, 1);
      const runTimeoutMs = o.runTimeout === undefined ? undefined : durationOption("--run-timeout", o.runTimeout);
      if (o.reporter.split(",").some((r) => r.trim() !== "" && r.trim() !== "console")) writableDirOption("--out", o.out);
      // A local etcd is spawned first and boots while the modules and scenarios load; its
      // "store: ..." line waits until they loaded (bad input stays a one-line error).
      let starting: ReturnType<typeof import("../etcd/provision.ts").startStore> | undefined;
      const storeLines: string[] = [];
      if (o.target !== "external") {
        starting = (await import("../etcd/provision.ts")).startStore({ prefer: store, log: (l) => storeLines.push(l), signal: ctx.signal });
        starting.ready.catch(() => undefined);
        await starting.started;
      }
      let loaded;
      let versions: GatewayVersion[];
      try {
        [loaded, versions] = await Promise.all([loadRunInput(paths, o), loadVersions()]);
        if (o.target === "external" && versions.length !== 1) throw new UsageError("--target external: name the one version the external gateway runs (--versions 3.16.0), its expectations are used");
      } catch (e) {
        await starting?.ready.then((p) => p.release(), () => undefined);
        throw e;
      }
      const { reporters, scenarios, writeReports, progressLine, summaryText } = loaded;

      let factory: TargetFactory;
      let ownEtcd: Promise<TargetFactory> | undefined;
      let release: () => Promise<void> = async () => undefined;
      if (o.target === "external") {
        factory = await (await import("../targets/factories.ts")).externalFactory(o);
      } else {
        const targets = o.target === "serve" ? import("../targets/factories.ts") : import("../targets/inproc.ts");
        const provisioned = await starting!.ready.catch((e: unknown) => {
          throwIfInterrupted(ctx.signal);
          throw e;
        });
        for (const l of storeLines) process.stderr.write(l + "\n");
        release = () => provisioned.release();
        const label = `${provisioned.kind} (${provisioned.source})`;
        try {
          const [loadedTargets, { acquireStore, storePerRun }, { needsEtcdToItself }] = await Promise.all([targets, import("../etcd/provision.ts"), import("../runner/suite.ts")]);
          const factoryOn = (p: typeof provisioned): TargetFactory =>
            "serveFactory" in loadedTargets ? loadedTargets.serveFactory(p, label, workers) : new loadedTargets.InprocFactory(storePerRun(p), label, "loopback", workers, (prefix) => p.forgetPrefix(prefix));
          factory = factoryOn(provisioned);
          // The scenarios that restart or compact etcd need an etcd to themselves. When the harness
          // started the first one, a second one lets them run alongside the others, not after.
          if (provisioned.source === "local-binary" && concurrency !== 1 && scenarios.some(needsEtcdToItself)) {
            const second = acquireStore({ prefer: "etcd", signal: ctx.signal, log: (l) => process.stderr.write(`${l.replace(/^store: /, "store for the scenarios that act on etcd: ")}\n`) });
            // Anything but a second local etcd (say it fell back to memory) is not the same store: they run after the others instead.
            ownEtcd = second.then((p) => (p.source === "local-binary" ? factoryOn(p) : Promise.reject(new Error(`no second local etcd (${p.reason})`))));
            ownEtcd.catch(() => undefined);
            release = async () => {
              await Promise.all([provisioned.release(), second.then((p) => p.release(), () => undefined)]);
            };
          }
        } catch (e) {
          await release();
          throw e;
        }
      }
      const console_ = reporters.includes("console");
      if (console_) process.stderr.write(`running ${scenarios.length} scenario(s) x ${versions.length} version(s) on ${factory.name} (${engineKind(o)} engine)\n`);
      let suite;
      try {
        const suiteOpts: Parameters<typeof runSuite>[0] = {
          scenarios,
          versions,
          factory,
          seed,
          signal: ctx.signal,
          onRun: (run, done, total) => {
            if (console_) process.stdout.write(progressLine(run, done, total) + "\n");
          },
        };
        if (concurrency !== undefined) suiteOpts.concurrency = concurrency;
        if (ownEtcd) suiteOpts.ownEtcd = ownEtcd;
        if (runTimeoutMs !== undefined) suiteOpts.runTimeoutMs = runTimeoutMs;
        // One external gateway is shared by every run, so they must not overlap.
        if (o.target === "external") suiteOpts.concurrency = 1;
        // The runs end (and close their targets) before the store they use is released.
        suite = await (await import("../runner/suite.ts")).runSuite(suiteOpts);
      } finally {
        await release();
      }
      if (suite.interrupted) {
        // Runs cut short have no verdict: no summary that would count them, no report files.
        process.stderr.write(`interrupted: ${suite.runs.length} of ${suite.interrupted.planned} runs ended before the interruption; no report written\n`);
        throwIfInterrupted(ctx.signal);
      }
      if (console_) process.stdout.write(summaryText(suite) + "\n");
      process.exitCode = suite.ok ? EXIT.ok : EXIT.failed;
      let written: string[];
      try {
        written = writeReports(suite, reporters, o.out);
      } catch (e) {
        throw new UsageError(`--out ${o.out}: could not write the reports: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      for (const f of written) process.stderr.write(`report: ${f}\n`);
    });
}
