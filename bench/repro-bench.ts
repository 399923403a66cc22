import { runRepro } from "../harness/cli/repro.ts";
import { fmtMs, max, median } from "./stats.ts";

export interface ReproBench {
  rounds: number;
  inprocEtcdMs: number[];
  inprocMemoryMs: number[];
  etcdStartMs: number[];
}

/** The repro in this process (no process start): on a real etcd it starts, and on the in-memory store. */
export async function benchRepro(rounds: number, log: (s: string) => void): Promise<ReproBench> {
  const r: ReproBench = { rounds, inprocEtcdMs: [], inprocMemoryMs: [], etcdStartMs: [] };
  for (let i = 0; i < rounds; i++) {
    for (const [store, into] of [["etcd", r.inprocEtcdMs], ["memory", r.inprocMemoryMs]] as const) {
      const t0 = performance.now();
      const rec = await runRepro({ versions: "all", store, log: () => undefined });
      if (!rec.ok) throw new Error(`in-process repro on ${store} did not behave as known`);
      into.push(performance.now() - t0);
      if (store === "etcd") r.etcdStartMs.push(rec.store.startMs);
    }
    log(`repro in process, round ${i + 1}/${rounds}: etcd ${fmtMs(r.inprocEtcdMs.at(-1)!)}, memory ${fmtMs(r.inprocMemoryMs.at(-1)!)}`);
  }
  return r;
}

export function reproTable(r: ReproBench): string {
  const row = (what: string, xs: number[]) => `| ${what} | ${fmtMs(median(xs))} | ${fmtMs(max(xs))} |`;
  return [
    `Repro of #13101 on the four releases inside one process (no process start), ${r.rounds} rounds:`,
    "",
    "| measurement | median | max |",
    "| --- | --- | --- |",
    row("in-process repro, real etcd (etcd start included)", r.inprocEtcdMs),
    row("in-process repro, in-memory store", r.inprocMemoryMs),
    row("local etcd start", r.etcdStartMs),
    "",
    `Ratio real etcd / in-memory: ${(median(r.inprocEtcdMs) / median(r.inprocMemoryMs)).toFixed(2)}x.`,
  ].join("\n");
}
