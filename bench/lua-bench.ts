/**
 * The lua engine (issue 7's targets): one run of the #13101 steps in process on APISIX's own
 * 3.15.0 Lua (target: median <= 20 ms), and `harness run scenarios/ --engine lua --versions all`
 * as a whole process (target: <= 10 s wall).
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { resolve } from "node:path";
import type { GatewayVersion } from "../harness/gateway/engine.ts";
import { luaVersions } from "../harness/gateway/lua/lua-engine.ts";
import { luaRuntime } from "../harness/gateway/lua/runtime.ts";
import { modelVersion } from "../harness/gateway/model-engine.ts";
import { getProfile } from "../harness/gateway/versions/index.ts";
import { closeIdleWorkers } from "../harness/gateway/lua/lua-worker.ts";
import { knownBehaviour } from "../harness/repro/repro-13101.ts";
import { runTimes } from "./lua-run-times.ts";
import { ROOT, type Tree } from "./processes.ts";
import { fmtMs, max, median } from "./stats.ts";

const SOURCES = { apisix: `${ROOT}../shared/apisix-src`, luaDeps: `${ROOT}../shared/lua-deps` };

/** One lua run's times in each tree, measured alternately (this tree and a baseline). */
export interface LuaAB {
  label: string;
  before: number[];
  after: number[];
  /** Per round: the calibration taken just before it, and each tree's median. */
  rounds: { calibrationMs: number; before: number; after: number }[];
}

export interface LuaBench {
  runs: number;
  /** Wall ms of a fixed LuaJIT workload (a process each): how fast this machine is right now. */
  calibrationMs: number[];
  runMs: Record<string, number[]>;
  catalogueMs: number[];
  catalogueSummary: string;
  ab?: LuaAB;
}

/** The run times of `bench/lua-run-times.ts` in a tree (3 warm-ups, then `runs`). */
function runTimesIn(tree: Tree, runs: number): number[] {
  const text = execFileSync(process.execPath, ["bin/run-ts.js", "bench/lua-run-times.ts", resolve(SOURCES.apisix), resolve(SOURCES.luaDeps), "3.15.0", String(runs)], { cwd: tree.dir, encoding: "utf8" });
  return (JSON.parse(text.trim().split("\n").at(-1)!) as { ms: number[] }).ms;
}

/** `harness run scenarios/ --engine lua --versions all`: wall time and its summary line. */
function catalogue(out: string): Promise<{ ms: number; summary: string }> {
  return new Promise((resolve, reject) => {
    let stdout = "";
    const t0 = performance.now();
    const child = spawn(process.execPath, ["bin/harness.js", "run", "scenarios/", "--engine", "lua", "--versions", "all", "--out", out], { cwd: ROOT, stdio: ["ignore", "pipe", "ignore"] });
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.once("error", reject);
    child.once("close", () => resolve({ ms: performance.now() - t0, summary: stdout.trim().split("\n").find((l) => /^\d+ passed, \d+ failed/.test(l)) ?? "(no summary)" }));
  });
}

/**
 * The same CPU-bound LuaJIT work (table stores and string building), `times` times (nine unless
 * told), each in a process of its own: the machine's speed at that moment, so figures taken at
 * different moments compare.
 */
const CALIBRATION = "local t = {} for i = 1, 2e6 do local k = i % 1000 + 1 t[k] = (t[k] or 0) + i end local s = {} for i = 1, 2e5 do s[#s + 1] = tostring(i) .. 'x' end";

function calibrate(times = 9): number[] {
  const { luajit } = luaRuntime();
  return Array.from({ length: times }, () => {
    const t0 = performance.now();
    const res = spawnSync(luajit, ["-e", CALIBRATION], { stdio: "ignore" });
    if (res.status !== 0) throw new Error(`luajit calibration failed: ${res.error?.message ?? `exit ${res.status}`}`);
    return performance.now() - t0;
  });
}

export async function benchLua(rounds: number, out: string, log: (s: string) => void, baseline?: Tree): Promise<LuaBench> {
  const runs = 20;
  const r: LuaBench = { runs, calibrationMs: calibrate(), runMs: {}, catalogueMs: [], catalogueSummary: "" };
  log(`LuaJIT calibration: median ${fmtMs(median(r.calibrationMs))}`);
  // Loopback (real HTTP servers, a TCP connection per probe: what run and repro use) on two
  // releases; then 3.15.0 with simulated backends (answered in process) on both engines, which
  // says how much of a run is the loopback network rather than the engine.
  const cases: { key: string; version: GatewayVersion; network: "loopback" | "simulated"; reproduces: boolean }[] = [
    ...["3.15.0", "3.18.0"].map((name) => ({ key: `lua ${name}`, version: luaVersions([name], SOURCES)[0]!, network: "loopback" as const, reproduces: knownBehaviour(name)?.verdict === "REPRODUCED" })),
    { key: "lua 3.15.0, simulated backends", version: luaVersions(["3.15.0"], SOURCES)[0]!, network: "simulated", reproduces: true },
    { key: "model 3.15.0", version: modelVersion(getProfile("3.15.0")), network: "loopback", reproduces: true },
    { key: "model 3.15.0, simulated backends", version: modelVersion(getProfile("3.15.0")), network: "simulated", reproduces: true },
  ];
  for (const c of cases) {
    const times = await runTimes(c.version, c.network, runs, c.reproduces);
    r.runMs[c.key] = times;
    log(`${c.key}: one #13101 run in process, median ${fmtMs(median(times))}`);
  }
  await closeIdleWorkers();
  if (baseline) {
    // A process per tree and round, alternating which tree goes first.
    const here: Tree = { label: "this tree", dir: ROOT };
    const ab: LuaAB = { label: baseline.label, before: [], after: [], rounds: [] };
    try {
      for (let i = 0; i < rounds; i++) {
        // The machine's speed moves between rounds (by 1.5x on the VM this was written on).
        const calibrationMs = median(calibrate(3));
        const round = { calibrationMs, before: 0, after: 0 };
        for (const t of i % 2 === 0 ? [baseline, here] : [here, baseline]) {
          const ms = runTimesIn(t, runs);
          (t === here ? ab.after : ab.before).push(...ms);
          round[t === here ? "after" : "before"] = median(ms);
        }
        ab.rounds.push(round);
        log(`lua 3.15.0 against ${baseline.label}, round ${i + 1}/${rounds} (calibration ${fmtMs(calibrationMs)}): before ${fmtMs(round.before)}, after ${fmtMs(round.after)}`);
      }
      r.ab = ab;
    } catch (e) {
      log(`lua: could not time a run in ${baseline.label} (${(e as Error).message.split("\n")[0]}); no before/after row`);
    }
  }
  for (let i = 0; i < rounds; i++) {
    const c = await catalogue(out);
    r.catalogueMs.push(c.ms);
    r.catalogueSummary = c.summary;
    log(`lua catalogue round ${i + 1}/${rounds}: ${fmtMs(c.ms)} (${c.summary})`);
  }
  return r;
}

export function luaTable(r: LuaBench): string {
  const yes = (ok: boolean): string => (ok ? "yes" : "**no**");
  return [
    `The lua engine (APISIX's own Lua under LuaJIT): one run of the #13101 steps in process (create, PUT, request, 2 s, PATCH, 3 s, close; median of ${r.runs} after 3 warm-up runs; loopback backends unless the row says simulated; the model rows are for comparison), and the catalogue x 4 releases as a whole process (${r.catalogueMs.length} rounds).`,
    "",
    "| measurement | median | max | target | met |",
    "| --- | --- | --- | --- | --- |",
    ...Object.entries(r.runMs).map(([v, xs]) => `| one #13101 run, ${v} | ${fmtMs(median(xs))} | ${fmtMs(max(xs))} | ${v.startsWith("lua 3.15.0") ? "≤ 20 ms" : ""} | ${v.startsWith("lua 3.15.0") ? yes(median(xs) <= 20) : ""} |`),
    ...(r.ab ? [`| one #13101 run, lua 3.15.0: commit ${r.ab.label} / this tree, alternating processes (${r.ab.after.length} runs each) | ${fmtMs(median(r.ab.before))} / ${fmtMs(median(r.ab.after))} (${(median(r.ab.after) / median(r.ab.before)).toFixed(2)}×) | ${fmtMs(max(r.ab.before))} / ${fmtMs(max(r.ab.after))} | | |`] : []),
    `| LuaJIT calibration (the same CPU-bound work in a process of its own, 9 times: how fast the machine is at the time) | ${fmtMs(median(r.calibrationMs))} | ${fmtMs(max(r.calibrationMs))} | | |`,
    `| \`harness run scenarios/ --engine lua --versions all\` (real etcd) | ${fmtMs(median(r.catalogueMs))} | ${fmtMs(max(r.catalogueMs))} | ≤ 10 s | ${yes(median(r.catalogueMs) <= 10_000)} |`,
    "",
    `The catalogue's own result: ${r.catalogueSummary}.`,
    ...(r.ab
      ? [
          "",
          `The alternating runs round by round, each after a calibration of its own (3 times): the machine's speed at that moment, and each tree's median of ${r.runs} runs.`,
          "",
          `| round | calibration | ${r.ab.label} | this tree |`,
          "| --- | --- | --- | --- |",
          ...r.ab.rounds.map((x, i) => `| ${i + 1} | ${fmtMs(x.calibrationMs)} | ${fmtMs(x.before)} | ${fmtMs(x.after)} |`),
        ]
      : []),
  ].join("\n");
}
