import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Command } from "commander";
import { throwIfInterrupted } from "./interrupt.ts";
import { addEngineOptions, engineKind, storeOption, versionsOption, workersOption, type EngineCliOptions } from "./options.ts";
import { EXIT, UsageError, type CommandContext } from "./usage.ts";

interface ImportOptions extends EngineCliOptions {
  out?: string;
  run?: boolean;
  versions: string;
  store: string;
}

function slug(file: string): string {
  return basename(file).replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "").toLowerCase() || "report";
}

export function registerImport(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command("import")
    .description("turn a bug report (markdown or plain text: curl steps, waits, quoted error lines) into a scenario file")
    .argument("<file>", "the bug report, e.g. a GitHub issue saved as text")
    .option("-o, --out <file>", "scenario file to write (default: stdout; with --run: reports/imported-<report name>.yaml)")
    .option("--run", "also run the new scenario on --versions and print the matrix")
    .option("--versions <list>", "versions for --run, comma separated (all = the four releases, candidates, everything)", "all")
    .option("--store <kind>", "store for --run: etcd or memory", "etcd");
  addEngineOptions(cmd).action(async (file: string, o: ImportOptions) => {
      if (!existsSync(file)) throw new UsageError(`${file}: no such file`);
      const versions = o.run ? await versionsOption("--versions", o.versions, o) : [];
      const workers = workersOption(o);
      const store = storeOption(o.store);
      const [{ ImportError, importReport }, { loadScenario }] = await Promise.all([import("../importer/import.ts"), import("../runner/load.ts")]);
      let result;
      try {
        result = importReport(readFileSync(file, "utf8"), basename(file));
      } catch (e) {
        if (e instanceof ImportError) throw new UsageError(`${file}${e.line > 0 ? `:${e.line}` : ""}: ${e.message}`);
        throw e;
      }
      for (const n of result.notes) process.stderr.write(`import: ${file}${n.line > 0 ? `:${n.line}` : ""}: ${n.text} (kept as a comment)\n`);
      const out = o.out ?? (o.run ? join("reports", `imported-${slug(file)}.yaml`) : undefined);
      if (!out) {
        process.stdout.write(result.yaml);
        return;
      }
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, result.yaml);
      process.stderr.write(`scenario: ${out} (reproduces on: ${result.reproducesOn.join(", ") || "none named"})\n`);
      const scenario = loadScenario(out);
      if (!o.run) return;
      const [{ acquireStore, storePerRun }, { progressLine }, { markdownMatrix }, { runSuite }, { InprocFactory }] = await Promise.all([
        import("../etcd/provision.ts"),
        import("../report/console.ts"),
        import("../report/markdown.ts"),
        import("../runner/suite.ts"),
        import("../targets/inproc.ts"),
      ]);
      const provisioned = await acquireStore({ prefer: store, log: (l) => process.stderr.write(l + "\n"), signal: ctx.signal }).catch((e: unknown) => {
        throwIfInterrupted(ctx.signal);
        throw e;
      });
      process.stderr.write(`running it on ${versions.length} version(s), ${engineKind(o)} engine\n`);
      let suite;
      try {
        suite = await runSuite({
          scenarios: [scenario],
          versions,
          factory: new InprocFactory(storePerRun(provisioned), `${provisioned.kind} (${provisioned.source})`, "loopback", workers),
          seed: 1,
          signal: ctx.signal,
          onRun: (run, done, total) => process.stderr.write(progressLine(run, done, total) + "\n"),
        });
      } finally {
        await provisioned.release();
      }
      throwIfInterrupted(ctx.signal);
      process.stdout.write(markdownMatrix(suite));
      process.exitCode = suite.ok ? EXIT.ok : EXIT.failed;
    });
}
