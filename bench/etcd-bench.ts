/**
 * What real etcd costs `harness run` (issue 11's run target, <= 0.8 s): etcd's own CPU and this
 * process's CPU per call of each kind the gateway makes (etcd's v3 JSON gateway, the API APISIX
 * speaks), how many of each a catalogue run makes, and the whole command's CPU time on real etcd
 * and on the in-memory store. On a machine of N cores a command cannot end sooner than its CPU
 * time / N, which bounds what any change short of less work can reach.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { GatewayClient, prefixRange, toBase64, type WatchStream } from "../harness/etcd/gateway-client.ts";
import { startLocalEtcd } from "../harness/etcd/local-etcd.ts";
import { acquireStore, storePerRun } from "../harness/etcd/provision.ts";
import { modelVersion } from "../harness/gateway/model-engine.ts";
import { RELEASES } from "../harness/gateway/versions/index.ts";
import { loadScenario } from "../harness/runner/load.ts";
import { findScenarioFiles } from "../harness/runner/scenario-files.ts";
import { runSuite } from "../harness/runner/suite.ts";
import { InprocFactory } from "../harness/targets/inproc.ts";
import { ROOT } from "./processes.ts";
import { median } from "./stats.ts";

/** The calls a run makes, by the name the table gives them. */
const KINDS = ["put", "range", "range of a prefix", "watch opened and closed"] as const;
type Kind = (typeof KINDS)[number];

export interface EtcdCosts {
  /** Per kind, one value per round: ms of CPU per call (etcd's, this process's) and wall ms per call. */
  perCall: Record<Kind, { etcdMs: number[]; clientMs: number[]; wallMs: number[] }>;
  /** etcd's CPU while nobody calls it, ms per second (its raft ticks), one per round. */
  idleMsPerS: number[];
  /** etcd's CPU from spawn to healthy, ms. */
  startCpuMs: number;
  /** Calls per run of the catalogue x 4 releases (in process, one etcd), by kind; other calls together. */
  callsPerRun: Record<Kind | "other", number>;
  runs: number;
  /** `harness run scenarios/ --versions all` as a process: wall and CPU ms (its own and its etcds'), per round. */
  command: Record<"etcd" | "memory", { wallMs: number[]; cpuMs: number[] }>;
}

const CALLS_PER_ROUND = 200;
/** How long etcd is left idle per round (its CPU is counted in clock ticks of 10 ms). */
const IDLE_MS = 2000;

/** CPU ms a process has used (utime + stime from /proc; clock ticks of 10 ms). */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function openWatch(client: GatewayClient, prefix: string): Promise<WatchStream> {
  return new Promise((resolve, reject) => {
    const stream: WatchStream = client.watch(prefixRange(prefix), {
      onResponse: (r) => {
        if (r.created) resolve(stream);
      },
      onEnd: (why) => reject(new Error(`watch ended before it was created: ${why}`)),
    });
  });
}

async function perCallCosts(rounds: number, log: (s: string) => void): Promise<Pick<EtcdCosts, "perCall" | "idleMsPerS" | "startCpuMs">> {
  const etcd = await startLocalEtcd();
  const startCpuMs = cpuMsOf(etcd.pid!);
  const client = new GatewayClient([etcd.endpoint], 5000);
  const perCall = Object.fromEntries(KINDS.map((k) => [k, { etcdMs: [], clientMs: [], wallMs: [] }])) as unknown as EtcdCosts["perCall"];
  const idleMsPerS: number[] = [];
  const value = JSON.stringify({ uri: "/ai/*", plugins: { "ai-proxy-multi": { instances: [{ name: "a", provider: "openai", weight: 1 }] } } });
  const ops: Record<Kind, (i: number) => Promise<unknown>> = {
    put: (i) => client.put(`/bench/routes/${i % 10}`, value),
    range: (i) => client.range({ key: toBase64(`/bench/routes/${i % 10}`) }),
    "range of a prefix": () => client.range(prefixRange("/bench/routes/")),
    "watch opened and closed": async (i) => (await openWatch(client, `/bench/w${i}/`)).cancel(),
  };
  try {
    const pid = etcd.pid!;
    for (let r = 0; r < rounds; r++) {
      const idle0 = cpuMsOf(pid);
      await new Promise((res) => setTimeout(res, IDLE_MS));
      idleMsPerS.push(((cpuMsOf(pid) - idle0) * 1000) / IDLE_MS);
      for (const kind of KINDS) {
        const e0 = cpuMsOf(pid);
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        for (let i = 0; i < CALLS_PER_ROUND; i++) await ops[kind](i);
        const c = process.cpuUsage(c0);
        perCall[kind].wallMs.push((performance.now() - t0) / CALLS_PER_ROUND);
        perCall[kind].clientMs.push((c.user + c.system) / 1000 / CALLS_PER_ROUND);
        perCall[kind].etcdMs.push((cpuMsOf(pid) - e0) / CALLS_PER_ROUND);
      }
      log(`etcd calls, round ${r + 1}/${rounds}: ${KINDS.map((k) => `${k} ${perCall[k].etcdMs.at(-1)!.toFixed(2)} ms etcd CPU`).join(", ")}`);
    }
  } finally {
    client.close();
    await etcd.stop();
  }
  return { perCall, idleMsPerS, startCpuMs };
}

/** The catalogue x 4 releases in this process on one etcd, counting the client's calls by kind. */
async function callsPerRun(): Promise<Pick<EtcdCosts, "callsPerRun" | "runs">> {
  const counts: EtcdCosts["callsPerRun"] = { put: 0, range: 0, "range of a prefix": 0, "watch opened and closed": 0, other: 0 };
  const proto = GatewayClient.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const kindOf: Record<string, (a: unknown) => Kind | "other"> = {
    put: () => "put",
    range: (a) => ((a as { range_end?: string }).range_end ? "range of a prefix" : "range"),
    watch: () => "watch opened and closed",
    deleteRange: () => "other",
    compact: () => "other",
    status: () => "other",
  };
  const originals = Object.fromEntries(Object.keys(kindOf).map((m) => [m, proto[m]!]));
  for (const [m, kind] of Object.entries(kindOf)) {
    const original = originals[m]!;
    proto[m] = function (this: unknown, ...args: unknown[]) {
      counts[kind(args[0])] += 1;
      return original.apply(this, args);
    };
  }
  const store = await acquireStore({ prefer: "etcd", log: () => undefined });
  try {
    if (store.source === "memory") throw new Error("no etcd to count calls against");
    const scenarios = findScenarioFiles([join(ROOT, "scenarios")]).map(loadScenario);
    const versions = RELEASES.map(modelVersion);
    const suite = await runSuite({ scenarios, versions, factory: new InprocFactory(storePerRun(store), "etcd"), seed: 1 });
    if (!suite.ok) throw new Error("the catalogue failed while its etcd calls were counted");
    const runs = suite.runs.length;
    for (const k of Object.keys(counts) as (keyof typeof counts)[]) counts[k] /= runs;
    return { callsPerRun: counts, runs };
  } finally {
    Object.assign(proto, originals);
    await store.release();
  }
}

/** `harness run scenarios/ --versions all` under bash, whose `times` gives the CPU of the children it waited for. */
function timedRun(store: "etcd" | "memory", out: string): Promise<{ wallMs: number; cpuMs: number }> {
  const run = `node bin/harness.js run scenarios/ --versions all --store ${store} --out '${out}' >/dev/null 2>&1 || exit 3; times`;
  return new Promise((resolve, reject) => {
    let stdout = "";
    const t0 = performance.now();
    const child = spawn("bash", ["-c", run], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.once("error", reject);
    child.once("close", (code) => {
      const wallMs = performance.now() - t0;
      // `times`: the shell's user and system time, then its children's ("0m2.450s 0m0.840s").
      const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(stdout.trim());
      if (code !== 0 || !m) return reject(new Error(`harness run --store ${store} failed (exit ${code})`));
      resolve({ wallMs, cpuMs: (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000 });
    });
  });
}

export async function benchEtcd(rounds: number, log: (s: string) => void): Promise<EtcdCosts> {
  const { perCall, idleMsPerS, startCpuMs } = await perCallCosts(rounds, log);
  const { callsPerRun: calls, runs } = await callsPerRun();
  log(`etcd calls per catalogue run: ${Object.entries(calls).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ")}`);
  const command: EtcdCosts["command"] = { etcd: { wallMs: [], cpuMs: [] }, memory: { wallMs: [], cpuMs: [] } };
  const out = mkdtempSync(join(tmpdir(), "harness-bench-etcd-"));
  try {
    for (let r = 0; r < rounds; r++) {
      for (const store of ["etcd", "memory"] as const) {
        const t = await timedRun(store, out);
        command[store].wallMs.push(t.wallMs);
        command[store].cpuMs.push(t.cpuMs);
        log(`harness run scenarios/ --versions all --store ${store}, round ${r + 1}/${rounds}: ${(t.wallMs / 1000).toFixed(2)} s wall, ${(t.cpuMs / 1000).toFixed(2)} s CPU`);
      }
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  return { perCall, idleMsPerS, startCpuMs, callsPerRun: calls, runs, command };
}

export function etcdTable(r: EtcdCosts): string {
  const ms = (x: number): string => `${x.toFixed(2)} ms`;
  const s = (x: number): string => `${(x / 1000).toFixed(2)} s`;
  const cores = availableParallelism();
  let etcdPerRun = 0;
  let clientPerRun = 0;
  const rows = KINDS.map((k) => {
    const c = r.perCall[k];
    etcdPerRun += median(c.etcdMs) * r.callsPerRun[k];
    clientPerRun += median(c.clientMs) * r.callsPerRun[k];
    return `| ${k} | ${ms(median(c.etcdMs))} | ${ms(median(c.clientMs))} | ${ms(median(c.wallMs))} | ${r.callsPerRun[k].toFixed(1)} |`;
  });
  const cpu = { etcd: median(r.command.etcd.cpuMs), memory: median(r.command.memory.cpuMs) };
  const wall = { etcd: median(r.command.etcd.wallMs), memory: median(r.command.memory.wallMs) };
  return [
    `What real etcd costs \`harness run\` (issue 11's run target): per call of each kind the gateway makes to etcd's v3 JSON gateway, etcd's own CPU and the client's (medians of ${r.perCall.put.etcdMs.length} rounds of ${CALLS_PER_ROUND} calls, one etcd, nothing else running on it); the calls per run of the catalogue x 4 releases (${r.runs} runs, in process); and \`harness run scenarios/ --versions all\` as a whole process on real etcd and on the in-memory store, with its CPU time (its own and its etcds', from bash's \`times\`).`,
    "",
    "| call | etcd CPU per call | client CPU per call | wall per call | calls per run |",
    "| --- | --- | --- | --- | --- |",
    ...rows,
    `| other calls (delete, compact, status) | | | | ${r.callsPerRun.other.toFixed(1)} |`,
    `| per run, from the calls above | ${ms(etcdPerRun)} | ${ms(clientPerRun)} | | |`,
    "",
    `An etcd uses ${r.startCpuMs.toFixed(0)} ms of CPU to start (spawn to healthy), and ${median(r.idleMsPerS).toFixed(0)} ms per second while idle (its raft ticks); the catalogue's \`harness run\` starts two (the second for the scenarios that act on etcd).`,
    "",
    "| `harness run scenarios/ --versions all` | wall | CPU (process and its etcds) | CPU / cores |",
    "| --- | --- | --- | --- |",
    `| real etcd | ${s(wall.etcd)} | ${s(cpu.etcd)} | ${s(cpu.etcd / cores)} |`,
    `| in-memory store | ${s(wall.memory)} | ${s(cpu.memory)} | ${s(cpu.memory / cores)} |`,
    "",
    `On ${cores} cores a command cannot end sooner than its CPU time / ${cores}: ${s(cpu.etcd / cores)} on real etcd (the target is 0.8 s), ${s(cpu.memory / cores)} on the in-memory store. The etcd calls alone (${r.runs} runs x ${ms(etcdPerRun + clientPerRun)} of etcd's and the client's CPU) are ${s((r.runs * (etcdPerRun + clientPerRun)) / cores)} of the first.`,
  ].join("\n");
}
