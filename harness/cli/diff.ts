import { existsSync, readFileSync } from "node:fs";
import type { Command } from "commander";
import type { DiffResult, KnownLimit } from "../runner/diff.ts";
import { throwIfInterrupted } from "./interrupt.ts";
import { intOption, scenariosOption, storeOption, versionsOption } from "./options.ts";
import { EXIT, type CommandContext } from "./usage.ts";

const KNOWN_LIMITS = new URL("../../fixtures/diff-known-limits.json", import.meta.url);

function knownLimits(): KnownLimit[] {
  if (!existsSync(KNOWN_LIMITS)) return [];
  return (JSON.parse(readFileSync(KNOWN_LIMITS, "utf8")) as { limits: KnownLimit[] }).limits;
}

export function formatDiff(result: DiffResult): string {
  const out: string[] = [];
  const agree = result.runs.length - result.disagreements.length;
  out.push(`${result.runs.length} scenario x version pairs on both engines: ${agree} agree, ${result.unexpected.length} disagree${result.disagreements.length > result.unexpected.length ? `, ${result.disagreements.length - result.unexpected.length} known limit(s) of the model` : ""} (${(result.wallMs / 1000).toFixed(1)} s)`);
  for (const d of result.disagreements) {
    out.push("");
    out.push(`${d.knownLimit ? "KNOWN " : "DIFFER"} ${d.version}  ${d.scenario} (${d.file}): ${d.kind}: model ${d.model}, lua ${d.lua}`);
    for (const l of d.first.split("\n")) out.push(`  ${l}`);
    if (d.knownLimit) out.push(`  known limit: ${d.knownLimit}`);
  }
  return out.join("\n");
}

export function registerDiff(program: Command, ctx: CommandContext): void {
  program
    .command("diff")
    .description("run scenarios on the model and on APISIX's own Lua with the same seed and list where verdicts or logs differ")
    .argument("[paths...]", "scenario files or directories", ["scenarios"])
    .option("--versions <list>", "releases (or git refs of --apisix) both engines run, comma separated; all = the four releases", "all")
    .option("--store <kind>", "etcd or memory", "etcd")
    .option("--seed <n>", "decides what APISIX leaves to chance, the same for both engines", "1")
    .option("--apisix <dir>", "APISIX's Lua: a git checkout or a folder of <version>/apisix trees (default: ../shared/apisix-src)")
    .option("--lua-deps <dir>", "the Lua libraries APISIX pins (default: ../shared/lua-deps)")
    .option("--json", "print the result as JSON")
    .action(async (paths: string[], o: { versions: string; store: string; seed: string; apisix?: string; luaDeps?: string; json?: boolean }) => {
      const seed = intOption("--seed", o.seed);
      const engine = (kind: string) => ({ engine: kind, workers: "1", ...(o.apisix ? { apisix: o.apisix } : {}), ...(o.luaDeps ? { luaDeps: o.luaDeps } : {}) });
      const model = await versionsOption("--versions", o.versions, engine("model"));
      const lua = await versionsOption("--versions", o.versions, engine("lua"));
      const [{ acquireStore, storePerRun }, { oneLine }, { runDiff }, { InprocFactory }] = await Promise.all([
        import("../etcd/provision.ts"),
        import("../report/console.ts"),
        import("../runner/diff.ts"),
        import("../targets/inproc.ts"),
      ]);
      const scenarios = await scenariosOption(paths);
      const provisioned = await acquireStore({ prefer: storeOption(o.store), log: (l) => process.stderr.write(l + "\n"), signal: ctx.signal }).catch((e: unknown) => {
        throwIfInterrupted(ctx.signal);
        throw e;
      });
      let result: DiffResult;
      try {
        result = await runDiff({
          scenarios,
          model,
          lua,
          seed,
          knownLimits: knownLimits(),
          factory: new InprocFactory(storePerRun(provisioned), `${provisioned.kind} (${provisioned.source})`),
          signal: ctx.signal,
          onRun: (r, done, total) => process.stderr.write(`[${done}/${total}] ${r.engine} ${r.version} ${r.outcome} ${oneLine(r.scenario.name)}\n`),
        });
      } finally {
        await provisioned.release();
      }
      // Pairs cut short by an interruption have no verdict to compare: no result at all.
      throwIfInterrupted(ctx.signal);
      process.stdout.write((o.json ? JSON.stringify({ seed, disagreements: result.disagreements, pairs: result.runs.length }, null, 2) : formatDiff(result)) + "\n");
      process.exitCode = result.unexpected.length === 0 ? EXIT.ok : EXIT.failed;
    });
}
