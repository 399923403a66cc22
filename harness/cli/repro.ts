import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import type { ReproObservation } from "../repro/repro-13101.ts";
import { profilesOption, storeOption } from "./options.ts";
import { EXIT } from "./usage.ts";

export interface ReproRow extends ReproObservation {
  version: string;
  asKnown: boolean;
  differences: string[];
  prefix: string;
}

export interface ReproRecord {
  issue: "apache/apisix#13101";
  startedAt: string;
  wallMs: number;
  store: { kind: string; source: string; reason: string; startMs: number };
  results: ReproRow[];
  ok: boolean;
}

export async function runRepro(opts: { versions: string; store: "etcd" | "memory"; log: (line: string) => void }): Promise<ReproRecord> {
  const started = Date.now();
  const profiles = profilesOption("--versions", opts.versions);
  // The store first (a local etcd spawned), then the gateway's code loads while etcd boots.
  const { startStore } = await import("../etcd/provision.ts");
  const store = startStore({ prefer: opts.store, log: opts.log });
  await store.started;
  const loaded = Promise.all([import("../repro/repro-13101.ts"), import("../targets/inproc.ts")]);
  const provisioned = await store.ready;
  let results: ReproRow[];
  try {
    const [{ compareWithKnown, knownBehaviour, REPRO_BACKENDS, reproduce13101 }, { InprocTarget }] = await loaded;
    // Each version has its own gateway, clock, backends and key prefix: they run at once, so
    // that one version's etcd round trips overlap another's work. Rows keep the versions' order.
    const settled = await Promise.allSettled(
      profiles.map(async (profile): Promise<ReproRow> => {
        const prefix = `/apisix-repro-${process.pid}-${started}-${profile.name}`;
        const target = await InprocTarget.create({ profile, store: provisioned.store, prefix, backends: REPRO_BACKENDS });
        try {
          const obs = await reproduce13101(target);
          const differences = compareWithKnown(obs, knownBehaviour(profile.name));
          return { version: profile.name, ...obs, asKnown: differences.length === 0, differences, prefix };
        } finally {
          await target.close();
        }
      }),
    );
    const failed = settled.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    results = settled.map((s) => (s as PromiseFulfilledResult<ReproRow>).value);
  } finally {
    await provisioned.release();
  }
  return {
    issue: "apache/apisix#13101",
    startedAt: new Date(started).toISOString(),
    wallMs: Date.now() - started,
    store: { kind: provisioned.kind, source: provisioned.source, reason: provisioned.reason, startMs: provisioned.startMs },
    results,
    ok: results.every((r) => r.asKnown),
  };
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + " ".repeat(n - s.length);
}

export function formatReproTable(record: ReproRecord): string {
  const head = ["VERSION", "VERDICT", "FAILURES IN 3 S AFTER PATCH", "AS KNOWN", "FIRST MATCHING ERROR LINE"];
  const rows = record.results.map((r) => [r.version, r.verdict, String(r.failures), r.asKnown ? "yes" : `NO: ${r.differences.join("; ")}`, r.firstErrorLine ?? "-"]);
  const widths = head.slice(0, 4).map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 4 ? pad(c, widths[i]!) : c)).join("  ");
  const out = [line(head), ...rows.map(line)];
  const reproduced = record.results.filter((r) => r.verdict === "REPRODUCED").map((r) => r.version);
  out.push("");
  out.push(
    record.ok
      ? `all ${record.results.length} versions behave as known; reproduced on: ${reproduced.join(", ") || "none"} (${(record.wallMs / 1000).toFixed(1)} s)`
      : `${record.results.filter((r) => !r.asKnown).length} of ${record.results.length} versions do NOT behave as known (${(record.wallMs / 1000).toFixed(1)} s)`,
  );
  return out.join("\n");
}

export function registerRepro(program: Command): void {
  program
    .command("repro")
    .description("reproduce apache/apisix#13101 (PUT route, request, wait 2 s, PATCH, wait 3 s) on each version and print the verdicts")
    .option("--versions <list>", "versions or candidates, comma separated; all = the four releases, everything = releases and candidates", "all")
    .option("--store <kind>", "etcd (a real etcd, the default; falls back to memory when none can be had) or memory", "etcd")
    .option("--json", "print the result as JSON instead of a table")
    .option("--out <dir>", "where the JSON record of the run goes", "reports")
    .action(async (o: { versions: string; store: string; json?: boolean; out: string }) => {
      const record = await runRepro({ versions: o.versions, store: storeOption(o.store), log: (l) => process.stderr.write(l + "\n") });
      mkdirSync(o.out, { recursive: true });
      const file = join(o.out, `repro-13101-${record.startedAt.replace(/[:.]/g, "-")}.json`);
      writeFileSync(file, JSON.stringify(record, null, 2) + "\n");
      if (o.json) process.stdout.write(JSON.stringify(record, null, 2) + "\n");
      else process.stdout.write(formatReproTable(record) + "\n");
      process.stderr.write(`record: ${file}\n`);
      process.exitCode = record.ok ? EXIT.ok : EXIT.failed;
    });
}
