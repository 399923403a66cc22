import type { Command } from "commander";
import type { DiffResult } from "../runner/diff.ts";
import { throwIfInterrupted } from "./interrupt.ts";
import { intOption, orderOption, scenariosOption, storeOption, versionsOption } from "./options.ts";
import { EXIT, type CommandContext } from "./usage.ts";

/** The counts line shared by `diff` and `props --diff`: chance and real differences apart. */
export function diffSummary(compared: number, unit: string, disagree: number, real: number, rechecked: boolean): string {
  const chance = disagree - real;
  const why = disagree === 0 ? "" : rechecked ? `: ${chance} chance (pairs() order: agree when both walk tables in key order), ${real} DIFFER` : `: ${real} DIFFER (not re-checked in key order)`;
  return `${compared} ${unit}: ${compared - disagree} agree, ${disagree} disagree${why}`;
}

export function formatDiff(result: DiffResult): string {
  const out: string[] = [];
  const order = result.order === "sorted" ? ", tables walked in key order" : "";
  out.push(`${diffSummary(result.runs.length, "scenario x version pairs on both engines", result.disagreements.length, result.unexpected.length, result.rechecked)} (${(result.wallMs / 1000).toFixed(1)} s${order})`);
  for (const d of result.disagreements) {
    out.push("");
    out.push(`${d.chance ? "CHANCE" : "DIFFER"} ${d.version}  ${d.scenario} (${d.file}): ${d.kind}: model ${d.model}, lua ${d.lua}`);
    for (const l of d.first.split("\n")) out.push(`  ${l}`);
    if (d.chance) out.push(`  ${d.chance}`);
    if (d.sortedFirst) out.push("  still apart with both walking tables in key order:", ...d.sortedFirst.split("\n").map((l) => `  ${l}`));
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
    .option("--order <order>", "how both engines walk tables: hash (LuaJIT's pairs() order, decided by --seed) or sorted (key order)", "hash")
    .option("--no-recheck", "do not run disagreements again in key order to tell chance (pairs() order) from real differences")
    .option("--json", "print the result as JSON")
    .action(async (paths: string[], o: { versions: string; store: string; seed: string; order: string; recheck: boolean; apisix?: string; luaDeps?: string; json?: boolean }) => {
      const seed = intOption("--seed", o.seed);
      const order = orderOption(o.order);
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
          order,
          recheck: o.recheck,
          onRecheck: (n) => process.stderr.write(`re-checking ${n} disagreement(s) with both engines walking tables in key order\n`),
          factory: new InprocFactory(storePerRun(provisioned), `${provisioned.kind} (${provisioned.source})`),
          signal: ctx.signal,
          onRun: (r, done, total) => process.stderr.write(`[${done}/${total}] ${r.engine} ${r.version} ${r.outcome} ${oneLine(r.scenario.name)}\n`),
        });
      } finally {
        await provisioned.release();
      }
      // Pairs cut short by an interruption have no verdict to compare: no result at all.
      throwIfInterrupted(ctx.signal);
      process.stdout.write((o.json ? JSON.stringify({ seed, order, rechecked: result.rechecked, pairs: result.runs.length, disagreements: result.disagreements, differ: result.unexpected.length }, null, 2) : formatDiff(result)) + "\n");
      process.exitCode = result.unexpected.length === 0 ? EXIT.ok : EXIT.failed;
    });
}
