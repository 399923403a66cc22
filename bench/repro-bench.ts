import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { runRepro } from "../harness/cli/repro.ts";
import { fmtMs, max, median } from "./stats.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

export interface ReproBench {
  rounds: number;
  cliEtcdMs: number[];
  cliMemoryMs: number[];
  inprocEtcdMs: number[];
  inprocMemoryMs: number[];
  etcdStartMs: number[];
}

/** `npm run repro` as a user runs it (process start and etcd start included), and the repro in process. */
export async function benchRepro(rounds: number, log: (s: string) => void): Promise<ReproBench> {
  const r: ReproBench = { rounds, cliEtcdMs: [], cliMemoryMs: [], inprocEtcdMs: [], inprocMemoryMs: [], etcdStartMs: [] };
  const out = mkdtempSync(join(tmpdir(), "harness-bench-"));
  try {
    await rounds_(r, rounds, out, log);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  return r;
}

async function rounds_(r: ReproBench, rounds: number, out: string, log: (s: string) => void): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    for (const [store, into] of [["etcd", r.cliEtcdMs], ["memory", r.cliMemoryMs]] as const) {
      const t0 = performance.now();
      const res = await execa("node", ["bin/harness.js", "repro", "--store", store, "--out", out], { cwd: ROOT, reject: false });
      if (res.exitCode !== 0) throw new Error(`repro --store ${store} exited ${res.exitCode}: ${res.stderr}`);
      into.push(performance.now() - t0);
    }
    for (const [store, into] of [["etcd", r.inprocEtcdMs], ["memory", r.inprocMemoryMs]] as const) {
      const t0 = performance.now();
      const rec = await runRepro({ versions: "all", store, log: () => undefined });
      if (!rec.ok) throw new Error(`in-process repro on ${store} did not behave as known`);
      into.push(performance.now() - t0);
      if (store === "etcd") r.etcdStartMs.push(rec.store.startMs);
    }
    log(`repro round ${i + 1}/${rounds}: cli etcd ${fmtMs(r.cliEtcdMs.at(-1)!)}, cli memory ${fmtMs(r.cliMemoryMs.at(-1)!)}`);
  }
}

export function reproTable(r: ReproBench): string {
  const row = (what: string, xs: number[]) => `| ${what} | ${fmtMs(median(xs))} | ${fmtMs(max(xs))} |`;
  return [
    `Repro of #13101 on the four releases, ${r.rounds} rounds:`,
    "",
    "| measurement | median | max |",
    "| --- | --- | --- |",
    row("`npm run repro` wall time, real etcd (node start + etcd start + 4 versions)", r.cliEtcdMs),
    row("`npm run repro -- --store memory` wall time", r.cliMemoryMs),
    row("in-process repro, real etcd (etcd start included)", r.inprocEtcdMs),
    row("in-process repro, in-memory store", r.inprocMemoryMs),
    row("local etcd start", r.etcdStartMs),
    "",
    `Ratio real etcd / in-memory: ${(median(r.cliEtcdMs) / median(r.cliMemoryMs)).toFixed(2)}x (CLI), ${(median(r.inprocEtcdMs) / median(r.inprocMemoryMs)).toFixed(2)}x (in process).`,
  ].join("\n");
}
